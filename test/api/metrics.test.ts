import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  await app.admin('POST', '/v1/tenants', { id: 'm' });
  for (let i = 0; i < 3; i++) await app.admin('GET', '/v1/tenants/m');
  await app.admin('GET', '/v1/tenants/nope');
});
afterAll(async () => {
  await app?.stop();
});

describe('/metrics', () => {
  it('exposes request latency by route template, not by object path', async () => {
    const res = await app.admin('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = res.body as string;
    expect(text).toMatch(
      /switchyard_http_request_duration_seconds_count\{method="GET",route="\/v1\/tenants\/:tenant",status="200"\} 3/,
    );
    expect(text).toMatch(
      /switchyard_http_request_duration_seconds_count\{method="GET",route="\/v1\/tenants\/:tenant",status="404"\} 1/,
    );
    expect(text).not.toContain('route="/v1/tenants/m"');
    expect(text).toContain('switchyard_process_cpu_seconds_total');
  });

  it('passes promtool check metrics', async () => {
    const text = (await app.admin('GET', '/metrics')).body as string;
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error, 'promtool is missing: apt-get install prometheus (.ci/run does)').toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });

  it('needs a fleet reader: tenant tokens and anonymous callers are refused', async () => {
    expect((await app.as(null)('GET', '/metrics')).status).toBe(401);
    expect((await app.as(await app.token('tenant-viewer', { tenant: 'm' }))('GET', '/metrics')).status).toBe(403);
  });
});
