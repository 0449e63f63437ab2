import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { seedTenantA } from '../support/fixture.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/switchyard.mjs', import.meta.url).pathname;

let app: TestApp;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'sy-render-'));
  dirs.push(d);
  return d;
};

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, DATABASE_URL: app.database.url, SWITCHYARD_SECRET_KEY: app.secretKey, LOG_LEVEL: 'warn' },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  app = await startTestApp();
  await seedTenantA(app);
});
afterAll(async () => {
  await app?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('switchyard render', () => {
  it('writes every active tenant for a kind; haproxy accepts the files where they were written', async () => {
    const out = tmp();
    const res = await cli(['render', '--kind', 'haproxy', '--out', out, '--config-dir', out]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/wrote \d+ files for revision \d+/);
    const cfg = readFileSync(join(out, 'haproxy.cfg'), 'utf8');
    expect(cfg).toContain('fe_a_web');
    writeFileSync(join(out, 'server-state'), '1\n');
    const check = await run('haproxy', ['-c', '-f', join(out, 'haproxy.cfg')]);
    expect(check.stdout).toMatch(/Configuration file is valid/);
  });

  it('writes exactly what a node gets with --node', async () => {
    const nodeDir = tmp();
    await app.admin('POST', '/v1/nodes', {
      name: 'edge-9',
      kind: 'nginx',
      capacity: { vcpu: 2, memoryMb: 2048 },
      configDir: nodeDir,
    });
    const out = tmp();
    const res = await cli(['render', '--node', 'edge-9', '--out', out]);
    expect(res.code, res.stderr).toBe(0);
    const viaApi = await app.admin('GET', '/v1/nodes/edge-9/config');
    expect(readFileSync(join(out, 'nginx.conf'), 'utf8')).toBe(viaApi.body.files['nginx.conf']);
  });

  it('exits 1 with a clear message for a bad kind or an unknown node', async () => {
    const bad = await cli(['render', '--kind', 'apache', '--out', tmp()]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--kind must be one of haproxy, nginx');
    const missing = await cli(['render', '--node', 'nope', '--out', tmp()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("node 'nope' not found");
  });
});
