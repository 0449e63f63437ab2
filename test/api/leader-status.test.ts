import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startControlPlane, type ControlPlane } from '../../src/main.js';
import { VERSION } from '../../src/version.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/** Two control planes on one database: each says whether it leads, in GET /v1/status and in /metrics. */
const RETRY_MS = 100;
const adminToken = `sy_test_${randomBytes(16).toString('hex')}`;
let database: TestDatabase;
const planes: ControlPlane[] = [];
const stopped = new Set<ControlPlane>();

beforeAll(async () => {
  database = await createTestDatabase();
  const env = {
    DATABASE_URL: database.url,
    PORT: '0',
    HOST: '127.0.0.1',
    SWITCHYARD_ADMIN_TOKEN: adminToken,
    SWITCHYARD_SECRET_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'silent',
    SWITCHYARD_RECONCILE: 'false',
    SWITCHYARD_REBALANCE: 'false',
    SWITCHYARD_STATS: 'false',
    SWITCHYARD_LEADER_RETRY_MS: String(RETRY_MS),
  };
  // One after the other, so both exist before either is asked; the database decides which leads.
  planes.push(await startControlPlane(loadConfig(env), createLogger('silent')));
  planes.push(await startControlPlane(loadConfig(env), createLogger('silent')));
});
afterAll(async () => {
  for (const cp of planes) if (!stopped.has(cp)) await cp.stop().catch(() => undefined);
  await database?.drop();
});

async function get(
  cp: ControlPlane,
  path: string,
  token = adminToken,
): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(cp.url + path, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* metrics are text */
  }
  return { status: res.status, body, text };
}

const gauge = (text: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith('switchyard_leader '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};

describe('which replica leads', () => {
  it('exactly one of two replicas says it leads, with when, in GET /v1/status and in the switchyard_leader gauge', async () => {
    await vi.waitFor(
      async () => {
        const statuses = await Promise.all(planes.map((cp) => get(cp, '/v1/status')));
        expect(statuses.map((s) => s.body.leader).sort()).toEqual([false, true]);
      },
      { timeout: 5000, interval: 20 },
    );
    const [one, two] = await Promise.all(planes.map(async (cp) => (await get(cp, '/v1/status')).body));
    expect(one.replica).not.toBe(two.replica);
    for (const s of [one, two]) {
      expect(s).toEqual({
        replica: expect.any(String),
        leader: expect.any(Boolean),
        leaderSince: s.leader ? expect.any(String) : null,
        version: VERSION,
      });
      if (s.leader) expect(Date.parse(s.leaderSince)).toBeLessThanOrEqual(Date.now());
    }
    const gauges = await Promise.all(planes.map(async (cp) => gauge((await get(cp, '/metrics')).text)));
    expect(gauges).toEqual([one.leader ? 1 : 0, two.leader ? 1 : 0]);
  });

  it('when the leader stops, the other takes over within the retry interval, and says so in both places', async () => {
    const statuses = await Promise.all(planes.map(async (cp) => (await get(cp, '/v1/status')).body));
    const leader = planes[statuses.findIndex((s) => s.leader)]!;
    const standby = planes.find((cp) => cp !== leader)!;
    const stoppedAt = Date.now();
    await leader.stop();
    stopped.add(leader);
    // Stopping closes the lock's connection, so the standby's next try (within RETRY_MS) wins it.
    await vi.waitFor(async () => expect((await get(standby, '/v1/status')).body.leader).toBe(true), {
      timeout: 5000,
      interval: 10,
    });
    expect(Date.now() - stoppedAt).toBeLessThan(RETRY_MS + 1000);
    const now = (await get(standby, '/v1/status')).body;
    expect(Date.parse(now.leaderSince)).toBeGreaterThanOrEqual(stoppedAt - 5);
    expect(gauge((await get(standby, '/metrics')).text)).toBe(1);
  });

  it('is fleet internals: an operator may read it, a tenant token may not', async () => {
    const standby = planes.find((cp) => !stopped.has(cp))!;
    const created = await fetch(`${standby.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ops', role: 'operator', tenant: null, node: null }),
    });
    const operator = ((await created.json()) as { secret: string }).secret;
    expect((await get(standby, '/v1/status', operator)).status).toBe(200);
    await fetch(`${standby.url}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'a' }),
    });
    const scoped = await fetch(`${standby.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ta', role: 'tenant-admin', tenant: 'a', node: null }),
    });
    const tenant = ((await scoped.json()) as { secret: string }).secret;
    expect((await get(standby, '/v1/status', tenant)).status).toBe(403);
  });
});
