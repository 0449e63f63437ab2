import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { request } from './haproxy-render-support.js';
import { ProxyNode } from './proxy-node.js';
import { STATS_ENV, holdingMember, oneVipTenant, type HoldingMember } from './stats-support.js';

/**
 * The stats poller across a master-worker reload of a real HAProxy 2.6: the node declares its
 * master CLI (`-S ipv4@127.0.0.1:PORT`), sessions held open through a tenant VIP stay on the old
 * worker after the reload, and the stored frontend sample keeps counting them (the Runtime API
 * alone reaches only the new worker, which has none) until they end. Every wait is bounded; only
 * PIDs this file started are stopped.
 */

const HOST = '127.0.0.1';
const HELD = 4;

let app: TestApp;
let edge: ProxyNode;
let vipPort = 0;
let member: HoldingMember;

async function write(method: string, path: string, body?: unknown): Promise<void> {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
}

/** The frontend samples of the tenant's VIP stored after `since`, oldest first. */
async function frontendSince(since: Date): Promise<{ sessions: number; at: Date }[]> {
  const { rows } = await sql<{ sessions: number; at: Date }>`
    select sessions, at from stat_samples
    where node_name = ${edge.name} and kind = 'frontend' and tenant_id = 'wk' and name = 'web' and at > ${since}
    order by at`.execute(app.cp.database.db);
  return rows;
}

/** The current worker's own count of the VIP's sessions, as the Runtime API alone sees it. */
async function currentWorkerSessions(): Promise<number> {
  const row = (await edge.stats()).find((r) => r.type === 'frontend' && r.pxname.startsWith('fe_wk_'));
  if (row === undefined) throw new Error('no frontend row for tenant wk');
  return row.scur ?? 0;
}

beforeAll(async () => {
  app = await startTestApp({ ...STATS_ENV });
  member = await holdingMember(HOST);
  vipPort = await oneVipTenant(app.admin, 'wk', HOST, member.port);
  edge = await ProxyNode.create('wk-edge-1', { master: true });
  await write('POST', '/v1/nodes', edge.registration());
  await vi.waitFor(() => edge.install(app.admin), { timeout: 15_000, interval: 200 });
  await edge.start();
}, 60_000);

afterAll(async () => {
  member?.release();
  await edge?.remove();
  await app?.stop();
  await member?.close();
});

describe('stats poller with a master CLI', () => {
  it('registers the master CLI address with the node', async () => {
    const res = await app.admin('GET', `/v1/nodes/${edge.name}`);
    expect(res.body.masterAddress).toEqual({ host: HOST, port: edge.masterPort });
  });

  it('when sessions held through a VIP are left on the old worker by a reload, then the stored sample still counts them, and 0 once they end', async () => {
    const requests = Array.from({ length: HELD }, () =>
      request({ host: HOST, port: vipPort, path: '/hold' }, 60_000).catch((e: Error) => e),
    );
    await vi.waitFor(() => expect(member.held()).toBe(HELD), { timeout: 5_000, interval: 20 });
    const beforeReload = new Date();
    await expect
      .poll(async () => (await frontendSince(beforeReload)).at(-1)?.sessions, { timeout: 10_000, interval: 200 })
      .toBe(HELD);

    await edge.reload();
    // The Runtime API now reaches only the new worker, which holds none of them.
    await vi.waitFor(async () => expect(await edge.oldWorkers()).toHaveLength(1), { timeout: 5_000, interval: 50 });
    expect(await currentWorkerSessions()).toBe(0);
    const reloaded = new Date();
    // Several polls after the reload, each one counting the old worker's sessions.
    await expect
      .poll(async () => (await frontendSince(reloaded)).length, { timeout: 15_000, interval: 200 })
      .toBeGreaterThanOrEqual(3);
    const afterReload = (await frontendSince(reloaded)).map((s) => s.sessions);
    expect(afterReload).toEqual(afterReload.map(() => HELD));
    expect(await edge.oldWorkers()).toHaveLength(1);

    member.release();
    for (const answer of await Promise.all(requests)) expect(answer).toMatchObject({ status: 200 });
    await vi.waitFor(async () => expect(await edge.oldWorkers()).toEqual([]), { timeout: 10_000, interval: 50 });
    const ended = new Date();
    await expect
      .poll(async () => (await frontendSince(ended)).at(-1)?.sessions, { timeout: 10_000, interval: 200 })
      .toBe(0);
  }, 60_000);
});
