import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startControlPlane, type ControlPlane } from '../../src/main.js';
import { startTestApp, type TestApp } from '../support/app.js';

/** Two control-plane replicas on one database: caches stay coherent through LISTEN/NOTIFY. */
let a: TestApp;
let b: ControlPlane;

beforeAll(async () => {
  a = await startTestApp();
  const config = loadConfig({
    DATABASE_URL: a.database.url,
    PORT: '0',
    SWITCHYARD_ADMIN_TOKEN: a.adminToken,
    // Replicas share the secret key: the fleet CA's key and other secrets are sealed with it.
    SWITCHYARD_SECRET_KEY: a.secretKey,
    LOG_LEVEL: 'silent',
    SWITCHYARD_TOKEN_CACHE_MS: '60000',
  });
  b = await startControlPlane(config, createLogger('silent'));
  expect((await a.admin('POST', '/v1/tenants', { id: 'shared', weight: 1 })).status).toBe(201);
});
afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

async function getOnB(path: string, token = a.adminToken): Promise<{ status: number; body: any }> {
  const res = await fetch(b.url + path, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

/** Notifications arrive within milliseconds; the bound is generous for a loaded machine. */
const WAIT = { timeout: 3000, interval: 10 };

describe('replicas', () => {
  it('a write on one replica is visible on the other once its notification arrives', async () => {
    expect((await getOnB('/v1/tenants/shared')).body.weight).toBe(1); // warms B's cache
    expect((await getOnB('/v1/tenants/shared')).body.weight).toBe(1);
    const patched = await a.admin('PATCH', '/v1/tenants/shared', { weight: 2 });
    expect(patched.status).toBe(200);
    await expect.poll(async () => (await getOnB('/v1/tenants/shared')).body.weight, WAIT).toBe(2);
  });

  it('a token revoked on one replica stops working on the other despite a long token cache', async () => {
    const token = await a.token('operator');
    expect((await getOnB('/v1/tenants/shared', token)).status).toBe(200);
    const id = (await a.admin('GET', '/v1/tokens')).body.items.find((t: any) => t.role === 'operator').id;
    expect((await a.admin('DELETE', `/v1/tokens/${id}`)).status).toBe(200);
    await expect.poll(async () => (await getOnB('/v1/tenants/shared', token)).status, WAIT).toBe(401);
  });

  it('notices when its notification stream drops, reconnects, and hears writes again', async () => {
    const events: boolean[] = [];
    b.feed.on('connected', (up) => events.push(up));
    const admin = new pg.Client({ connectionString: a.database.url });
    await admin.connect();
    const killed = await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'switchyard-change-feed' and datname = current_database()`,
    );
    await admin.end();
    expect(killed.rowCount).toBe(2); // one LISTEN connection per replica
    // While down the cache is bypassed (read-cache.test.ts); here: the stream comes back on its own.
    await expect.poll(() => events.join(','), { ...WAIT, timeout: 15_000 }).toBe('false,true');
    expect((await getOnB('/v1/tenants/shared')).body.weight).toBe(2);
    await a.admin('PATCH', '/v1/tenants/shared', { weight: 3 });
    await expect.poll(async () => (await getOnB('/v1/tenants/shared')).body.weight, WAIT).toBe(3);
  });
});
