import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision } from '../support/fixture.js';
import { eventually, freePort, httpMember, runtimeCommand, type Closable } from './haproxy-render-support.js';
import { ProxyNode } from './proxy-node.js';

/**
 * Caps enforced without a reload, against a real HAProxy 2.6 on loopback: the rebalancer job and
 * the reconciler run as in production (the test plays the agent: writes the files, reports them
 * applied). When a tenant's limit changes, the rebalancer recomputes its caps and stores them,
 * the commit wakes the reconciler, and the tenant's connection and rate caps in the caps map
 * (`show map`) and its frontend's maxconn ceiling (the limit: `show stat` slim) are live with the
 * worker PID unchanged. Bounded waits; only the PIDs this file started are stopped.
 */

const HOST = '127.0.0.1';
let app: TestApp;
let edge: ProxyNode;
let member: Closable & { port: number };
let pid = 0;

const mapFile = () => join(edge.dir, 'maps/tenant-caps.map');

interface Live {
  readonly connections: number | undefined;
  readonly rate: number | undefined;
  readonly maxconn: number | undefined;
}

/** What the proxy enforces now: the tenant's caps in the caps map, and its frontend's maxconn ceiling. */
async function live(): Promise<Live> {
  const fe = (await edge.stats()).find((r) => r.pxname === 'fe_t1_web' && r.svname === 'FRONTEND');
  const map = await runtimeCommand(edge.adminSocket, `show map ${mapFile()}`, 1000);
  const value = (key: string) => {
    const line = new RegExp(`^\\S+ ${key.replace('.', '\\.')} (\\d+)$`, 'm').exec(map);
    return line ? Number(line[1]) : undefined;
  };
  return { connections: value('t1.conn'), rate: value('t1'), maxconn: fe?.slim ?? undefined };
}

const same = (a: Live, b: Live) => a.connections === b.connections && a.rate === b.rate && a.maxconn === b.maxconn;

async function ok(method: string, path: string, body?: unknown) {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

beforeAll(async () => {
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_RECONCILE_INTERVAL_MS: '2000',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
    SWITCHYARD_REBALANCE: 'true',
    SWITCHYARD_REBALANCE_INTERVAL_S: '1',
    // No agent heartbeats here: the node's registration and its 'applied' report are its signs of life.
    SWITCHYARD_HEARTBEAT_INTERVAL_S: '120',
  });
  member = await httpMember('m1', HOST);
  const port = await freePort(HOST);
  edge = await ProxyNode.create('edge-1');
  // The node (512 MB, 1 vCPU) holds 5,000 connections and 10,000 req/s; t1 reserves half, may use all.
  await ok('POST', '/v1/tenants', {
    id: 't1',
    reservation: { vcpu: 0.5, memoryMb: 256 },
    limit: { vcpu: 1, memoryMb: 512 },
  });
  await ok('POST', '/v1/tenants/t1/pools', { name: 'web' });
  await ok('PUT', '/v1/tenants/t1/pools/web/members', { members: [{ name: 'm1', address: HOST, port: member.port }] });
  await ok('POST', '/v1/tenants/t1/vips', { name: 'web', address: HOST, port, protocol: 'http', defaultPool: 'web' });
  await ok('POST', '/v1/nodes', edge.registration());
  // The rebalancer gives t1 the whole idle node; install what the node is served once that is stored.
  await eventually(
    'first allocation stored',
    async () => ((await ok('GET', '/v1/allocations')).items.length === 1 ? true : undefined),
    10_000,
  );
  await edge.install(app.admin);
  await edge.start();
  pid = await edge.workerPid();
  await eventually(
    'caps live',
    async () => (same(await live(), { connections: 5000, rate: 10_000, maxconn: 5000 }) ? true : undefined),
    10_000,
  );
}, 60_000);

afterAll(async () => {
  await edge?.remove();
  await app?.stop();
  await member?.close();
});

describe('allocation enforcement', () => {
  it("when a tenant's limit drops, then the rebalancer lowers its caps on the proxy through the Runtime API, with no reload", async () => {
    const before = await currentRevision(app);
    await ok('PATCH', '/v1/tenants/t1', { limit: { vcpu: 0.75, memoryMb: 384 } });
    const lowered = { connections: 3750, rate: 7500, maxconn: 3750 };
    const now = await eventually(
      'new caps live',
      async () => {
        const l = await live();
        return same(l, lowered) ? l : undefined;
      },
      10_000,
      50,
    );
    expect(now).toEqual(lowered);
    expect(await edge.workerPid()).toBe(pid);
    const { history } = await ok('GET', '/v1/tenants/t1/allocation');
    expect(
      history
        .slice(0, 2)
        .map((h: any) => [h.dimension, h.from, h.to, h.reason])
        .sort(),
    ).toEqual([
      ['connections', 5000, 3750, 'limit'],
      ['requestsPerSecond', 10_000, 7500, 'limit'],
    ]);
    expect(history[0].revision).toBeGreaterThan(before + 1);
  });

  it('when a rebalance is applied through the API after a raise, then the caps rise live and the files carry them too', async () => {
    await ok('PATCH', '/v1/tenants/t1', { limit: { vcpu: 1, memoryMb: 512 } });
    await ok('POST', '/v1/rebalance');
    await eventually(
      'raised caps live',
      async () => (same(await live(), { connections: 5000, rate: 10_000, maxconn: 5000 }) ? true : undefined),
      10_000,
      50,
    );
    expect(await edge.workerPid()).toBe(pid);
    // The node's files carry the same caps, so a later reload keeps them; no reload is needed for them.
    const config = await ok('GET', '/v1/nodes/edge-1/config');
    expect(config.files['haproxy.cfg']).toMatch(/frontend fe_t1_web\n(?:.*\n)*?\s+maxconn 5000\n/);
    expect(config.files['maps/tenant-caps.map']).toMatch(/^t1 10000\nt1\.conn 5000$/m);
    const node = await ok('GET', '/v1/nodes/edge-1');
    expect(node.status.reloadCount).toBe(0);
  });
});
