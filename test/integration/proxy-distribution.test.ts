import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/fleet/agent/agent.js';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  converged,
  expectOk,
  masterCli,
  memoryLogger,
  startFastAgent,
  startHaproxy,
  startNginx,
  type ProxyProcess,
} from './agent-support.js';
import { eventually, freePort, httpMember, request, type Closable } from './haproxy-render-support.js';

/**
 * Issue 15: the same member set gives the same distribution on both proxies. Two tenants with
 * identical pools (the same five member endpoints, weights 1/2/3, a drained member and a backup)
 * differ only in their proxyKind, so one is served by a HAProxy node and the other by an NGINX
 * node (the Lua balancer), each from the config the control plane rendered, applied by the node's
 * agent. Requests are sequential, each on a new connection; a member's share is what it answered
 * of them. The tolerance: each member's share within 5 percentage points of what the algorithm
 * promises (weight/total; a third each for idle leastconn members) on both, the drained member
 * and the backup at 0. Only 127.0.0.0/8; every wait is bounded; only processes started here are
 * stopped, by PID.
 */
const KINDS = ['haproxy', 'nginx'] as const;
type Kind = (typeof KINDS)[number];
const VIPS: Record<Kind, string> = { haproxy: '127.0.0.95', nginx: '127.0.0.96' };
const MEMBERS = [
  { name: 'm1', address: '127.0.8.41', weight: 1 },
  { name: 'm2', address: '127.0.8.42', weight: 2 },
  { name: 'm3', address: '127.0.8.43', weight: 3 },
  { name: 'drained', address: '127.0.8.44', weight: 3, state: 'drain' },
  { name: 'spare', address: '127.0.8.45', weight: 3, backup: true },
] as const;
/** What the weights promise: share of each member that takes new requests. */
const EXPECTED: Record<string, number> = { m1: 1 / 6, m2: 2 / 6, m3: 3 / 6, drained: 0, spare: 0 };
const REQUESTS = 600;
/** Percentage points a member's share may stray from weight/total. */
const TOLERANCE_PP = 5;

let app: TestApp;
let root: string;
const ports: Record<Kind, number> = { haproxy: 0, nginx: 0 };
const backends: (Closable & { port: number })[] = [];
const agents: Agent[] = [];
const proxies: ProxyProcess[] = [];

const tenantOf = (kind: Kind) => `dist-${kind}`;

/** `n` requests through the kind's VIP, each on a new connection (from `from`, when given): answers per member. */
async function shares(kind: Kind, n: number, from?: (i: number) => string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await request({ host: VIPS[kind], port: ports[kind], path: '/', localAddress: from?.(i) });
    expect(res.status, `${kind}: ${res.body}`).toBe(200);
    const member = String(res.headers['x-member']);
    counts[member] = (counts[member] ?? 0) + 1;
  }
  return counts;
}

/**
 * One request from each of `clients` loopback addresses, then every 7th client again, which must
 * land on the same member: how many clients each member took.
 */
async function clientsPerMember(kind: Kind, clients: number): Promise<Record<string, number>> {
  const address = (i: number) => `127.0.${100 + Math.floor(i / 200)}.${1 + (i % 200)}`;
  const first: string[] = [];
  for (let i = 0; i < clients; i++) {
    const res = await request({ host: VIPS[kind], port: ports[kind], path: '/', localAddress: address(i) });
    expect(res.status, `${kind}: ${res.body}`).toBe(200);
    first.push(String(res.headers['x-member']));
  }
  for (let i = 0; i < clients; i += 7) {
    const again = await request({ host: VIPS[kind], port: ports[kind], path: '/', localAddress: address(i) });
    expect(String(again.headers['x-member']), `${kind} client ${address(i)}`).toBe(first[i]);
  }
  const counts: Record<string, number> = {};
  for (const member of first) counts[member] = (counts[member] ?? 0) + 1;
  return counts;
}

/** Each member's share in percentage points off weight/total (positive: more than its weight says). */
function deviations(
  counts: Record<string, number>,
  n: number,
  expected: Record<string, number> = EXPECTED,
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(expected).map(([m, p]) => [m, Math.round(((counts[m] ?? 0) / n - p) * 1000) / 10]),
  );
}

/** Writes the same change to both tenants and waits until both nodes run it. */
async function both(method: string, path: (tenant: string) => string, body: unknown): Promise<void> {
  for (const kind of KINDS) {
    const written = await expectOk(app, method, path(tenantOf(kind)), body);
    await converged(app.admin, `dist-${kind}-node`, written.revision, 30_000);
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-dist-'));
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_LEADER_RETRY_MS: '100',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
  });
  for (const m of MEMBERS) backends.push(await httpMember(m.name, m.address));
  for (const kind of KINDS) {
    const tenant = tenantOf(kind);
    ports[kind] = await freePort(VIPS[kind]);
    await expectOk(app, 'POST', '/v1/tenants', {
      id: tenant,
      proxyKind: kind,
      reservation: { vcpu: 2, memoryMb: 2048 },
    });
    await expectOk(app, 'POST', `/v1/tenants/${tenant}/pools`, {
      name: 'web',
      healthCheck: { type: 'http', path: '/healthz', intervalMs: 1000, timeoutMs: 500 },
    });
    await expectOk(app, 'PUT', `/v1/tenants/${tenant}/pools/web/members`, {
      members: MEMBERS.map((m, i) => ({ ...m, port: backends[i]!.port })),
    });
    await expectOk(app, 'POST', `/v1/tenants/${tenant}/vips`, {
      name: 'www',
      address: VIPS[kind],
      port: ports[kind],
      protocol: 'http',
      defaultPool: 'web',
    });
  }
  for (const kind of KINDS) {
    const name = `dist-${kind}-node`;
    const dir = join(root, kind);
    const configDir = join(dir, 'etc');
    const socket = join(dir, 'master.sock');
    const node = await expectOk(app, 'POST', '/v1/nodes', {
      name,
      kind,
      capacity: { vcpu: 4, memoryMb: 4096 },
      configDir,
      socketDir: dir,
      runtimeAddress: { host: '127.0.0.1', port: await freePort('127.0.0.1') },
    });
    agents.push(
      startFastAgent(app.url, { name, kind, configDir, socket, token: node.agentToken }, memoryLogger().logger),
    );
    await converged(app.admin, name, 0, 30_000);
    proxies.push(kind === 'haproxy' ? startHaproxy(configDir, socket) : startNginx(configDir));
    if (kind === 'haproxy')
      await eventually(
        'the master CLI',
        async () =>
          (await masterCli(socket)
            .showProc()
            .catch(() => null))
            ? true
            : undefined,
        15_000,
      );
  }
  const revision = (await app.admin('GET', '/v1/plan')).body.revision as number;
  for (const kind of KINDS) await converged(app.admin, `dist-${kind}-node`, revision, 30_000);
  // Both serve, and every member has passed its first check (the drained one reports DRAIN on both).
  await eventually(
    'every member up on both nodes',
    async () => {
      const members = await Promise.all(
        KINDS.map(
          async (kind) => (await app.admin('GET', `/v1/tenants/${tenantOf(kind)}/status`)).body.members as any[],
        ),
      );
      return members.every(
        (list) =>
          list.length === MEMBERS.length &&
          list.every((m) => m.health.every((h: any) => h.status === 'UP' || h.status === 'DRAIN')),
      )
        ? true
        : undefined;
    },
    20_000,
    200,
  );
}, 120_000);

afterAll(async () => {
  for (const a of agents) await a.stop();
  for (const p of proxies) await p.stop();
  for (const b of backends) await b.close();
  await app?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('one member set on a HAProxy node and an NGINX node', () => {
  it(`round robin, weights 1/2/3, a drained member and a backup: over ${REQUESTS} new connections each member's share is within ${TOLERANCE_PP} points of weight/total on both`, async () => {
    const seen: Record<Kind, Record<string, number>> = { haproxy: {}, nginx: {} };
    for (const kind of KINDS) seen[kind] = await shares(kind, REQUESTS);
    console.log(
      `round robin: ${JSON.stringify(seen)}; off by (points) ${JSON.stringify({ haproxy: deviations(seen.haproxy, REQUESTS), nginx: deviations(seen.nginx, REQUESTS) })}`,
    );
    for (const kind of KINDS) {
      expect(seen[kind].drained ?? 0, kind).toBe(0);
      expect(seen[kind].spare ?? 0, kind).toBe(0);
      for (const [m, off] of Object.entries(deviations(seen[kind], REQUESTS)))
        expect(Math.abs(off), `${kind} ${m}: ${JSON.stringify(seen[kind])}`).toBeLessThanOrEqual(TOLERANCE_PP);
    }
  });

  it(`least connections, one request at a time: idle members take turns whatever their weights, each within ${TOLERANCE_PP} points of a third on both`, async () => {
    // HAProxy's leastconn keys a server by (in flight + 1) / weight, but an idle one by 0: with
    // nothing in flight every member is equal, and they rotate. NGINX's balancer keeps that rule.
    await both('PATCH', (t) => `/v1/tenants/${t}/pools/web`, { algorithm: 'leastconn' });
    const seen: Record<Kind, Record<string, number>> = { haproxy: {}, nginx: {} };
    for (const kind of KINDS) seen[kind] = await shares(kind, REQUESTS);
    const even = { m1: 1 / 3, m2: 1 / 3, m3: 1 / 3, drained: 0, spare: 0 };
    const off = (kind: Kind) => deviations(seen[kind], REQUESTS, even);
    console.log(
      `leastconn: ${JSON.stringify(seen)}; off by (points) ${JSON.stringify({ haproxy: off('haproxy'), nginx: off('nginx') })}`,
    );
    for (const kind of KINDS)
      for (const [m, points] of Object.entries(off(kind)))
        expect(Math.abs(points), `${kind} ${m}: ${JSON.stringify(seen[kind])}`).toBeLessThanOrEqual(TOLERANCE_PP);
  });

  it(`source hashing, 240 client addresses: each keeps its member, and each member's share of clients is within ${TOLERANCE_PP} points of weight/total on both`, async () => {
    const seen: Record<Kind, Record<string, number>> = { haproxy: {}, nginx: {} };
    await both('PATCH', (t) => `/v1/tenants/${t}/pools/web`, { algorithm: 'source' });
    for (const kind of KINDS) seen[kind] = await clientsPerMember(kind, 240);
    const off = (kind: Kind) => deviations(seen[kind], 240);
    console.log(
      `source: ${JSON.stringify(seen)}; off by (points) ${JSON.stringify({ haproxy: off('haproxy'), nginx: off('nginx') })}`,
    );
    for (const kind of KINDS)
      for (const [m, points] of Object.entries(off(kind)))
        expect(Math.abs(points), `${kind} ${m}: ${JSON.stringify(seen[kind])}`).toBeLessThanOrEqual(TOLERANCE_PP);
  });

  it(`source persistence, 240 client addresses: each keeps its member, and each member's share of clients is within ${TOLERANCE_PP} points of weight/total on both`, async () => {
    await both('PATCH', (t) => `/v1/tenants/${t}/pools/web`, { algorithm: 'roundrobin' });
    await both('PATCH', (t) => `/v1/tenants/${t}/vips/www`, { persistence: 'source' });
    const seen: Record<Kind, Record<string, number>> = { haproxy: {}, nginx: {} };
    for (const kind of KINDS) seen[kind] = await clientsPerMember(kind, 240);
    const off = (kind: Kind) => deviations(seen[kind], 240);
    console.log(
      `source persistence: ${JSON.stringify(seen)}; off by (points) ${JSON.stringify({ haproxy: off('haproxy'), nginx: off('nginx') })}`,
    );
    for (const kind of KINDS)
      for (const [m, points] of Object.entries(off(kind)))
        expect(Math.abs(points), `${kind} ${m}: ${JSON.stringify(seen[kind])}`).toBeLessThanOrEqual(TOLERANCE_PP);
  });
});
