import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision } from '../support/fixture.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

describe('Idempotency-Key', () => {
  it('replays the first answer and creates nothing the second time', async () => {
    const headers = { 'idempotency-key': 'ci-run-42' };
    const first = await app.admin('POST', '/v1/tenants', { id: 'idem' }, headers);
    expect(first.status).toBe(201);
    const revision = await currentRevision(app);
    const again = await app.admin('POST', '/v1/tenants', { id: 'idem' }, headers);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await currentRevision(app)).toBe(revision);
    // Without the key the same request is a plain duplicate.
    expect((await app.admin('POST', '/v1/tenants', { id: 'idem' })).status).toBe(409);
  });

  it('refuses the same key with a different body, naming the first request', async () => {
    const headers = { 'idempotency-key': 'ci-run-43' };
    expect((await app.admin('POST', '/v1/tenants', { id: 'one' }, headers)).status).toBe(201);
    const other = await app.admin('POST', '/v1/tenants', { id: 'two' }, headers);
    expect(other.status).toBe(409);
    expect(other.body.error.message).toMatch(/already used for a different request \(POST \/v1\/tenants\)/);
    expect((await app.admin('GET', '/v1/tenants/two')).status).toBe(404);
  });

  it('runs concurrent requests with one key exactly once', async () => {
    const headers = { 'idempotency-key': 'ci-run-44' };
    const results = await Promise.all(
      Array.from({ length: 10 }, () => app.admin('POST', '/v1/tenants/idem/pools', { name: 'web' }, headers)),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(new Set(results.map((r) => r.body.revision)).size).toBe(1);
    const audit = await app.database.handle.db
      .selectFrom('audit_events')
      .select('id')
      .where('resource_type', '=', 'pool')
      .where('tenant_id', '=', 'idem')
      .execute();
    expect(audit).toHaveLength(1);
  });

  it('keeps keys per token: another token may use the same key for its own request', async () => {
    const other = app.as(await app.token('operator'));
    const res = await other('POST', '/v1/tenants', { id: 'three' }, { 'idempotency-key': 'ci-run-42' });
    expect(res.status).toBe(201);
    expect(res.body.id).toBe('three');
  });

  it('does not store secrets for replays: a replayed token creation answers without the secret', async () => {
    const headers = { 'idempotency-key': 'token-1' };
    const first = await app.admin('POST', '/v1/tokens', { name: 'ci', role: 'registrar' }, headers);
    expect(first.body.secret).toMatch(/^sy_/);
    const again = await app.admin('POST', '/v1/tokens', { name: 'ci', role: 'registrar' }, headers);
    expect(again.status).toBe(201);
    expect(again.body.secret).toBeNull();
    expect(again.body.id).toBe(first.body.id);
    const stored = await app.database.handle.db.selectFrom('idempotency_keys').select('response').execute();
    expect(JSON.stringify(stored)).not.toContain(first.body.secret);
  });

  it('rejects a malformed key with 400', async () => {
    const res = await app.admin('POST', '/v1/tenants', { id: 'bad-key' }, { 'idempotency-key': 'has space' });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('headers.idempotency-key');
  });
});
