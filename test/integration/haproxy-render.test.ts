import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeSnapshot, PoolSnapshot, TenantSnapshot, VipSnapshot } from '../../src/domain/snapshot.js';
import { renderHaproxy } from '../../src/render/haproxy.js';
import { HAPROXY_FILES } from '../../src/render/haproxy-names.js';
import { validateHaproxySnapshot } from '../../src/render/validate-haproxy.js';
import { pool, seedCertificate, seedMemberCertificate, seedSnapshot, vip } from '../fixtures/seed-snapshot.js';
import {
  eventually,
  freePort,
  httpMember,
  request,
  runtimeCommand,
  showStat,
  startHaproxy,
  tcpExchange,
  tcpMember,
  type Closable,
  type RunningHaproxy,
} from './haproxy-render-support.js';

/**
 * The seed scenario rendered and served by a real HAProxy on loopback: 192.168.1.10x becomes
 * 127.0.0.10x on free high ports, each member a small node server on 127.0.x.y (tenant b's speak
 * TLS with the api.b.internal certificate its CA bundle verifies). Test-only
 * changes to the seed: faster health checks, tenant b's rate limit lowered to 2 requests/s,
 * tenant c's allowlist narrowed to 127.0.0.1, and tenant a given an extra pool, two routes
 * and a VIP without a default pool, to prove routing.
 */
const CERT = seedCertificate();
const FAST_CHECK = { intervalMs: 300, timeoutMs: 200, rise: 1, fall: 2 };

let configDir: string;
let haproxy: RunningHaproxy | undefined;
const servers: Closable[] = [];
const members = new Map<string, Closable>();
const ports = { a: 0, aNoRoute: 0, b: 0, c: 0, runtime: 0 };

const A = '127.0.0.100';
const B = '127.0.0.101';
const C = '127.0.0.102';

function mapVip(v: VipSnapshot, address: string, port: number, changes: Partial<VipSnapshot> = {}): VipSnapshot {
  return { ...v, address, port, ...changes };
}

function mapMembers(
  p: PoolSnapshot,
  endpoints: Record<string, { address: string; port: number }>,
  check = p.healthCheck,
): PoolSnapshot {
  return { ...p, healthCheck: check, members: p.members.map((m) => ({ ...m, ...endpoints[m.name]! })) };
}

async function buildSnapshot(): Promise<NodeSnapshot> {
  const seed = seedSnapshot('haproxy', configDir);
  const [a, b, c] = seed.tenants as [TenantSnapshot, TenantSnapshot, TenantSnapshot];
  for (const key of ['a', 'aNoRoute', 'b', 'c'] as const)
    ports[key] = await freePort(key === 'b' ? B : key === 'c' ? C : A);
  ports.runtime = await freePort('127.0.0.1');

  const aEndpoints: Record<string, { address: string; port: number }> = {};
  for (const [i, m] of a.pools[0]!.members.entries()) {
    const member = await httpMember(m.name, `127.0.1.${11 + i}`);
    servers.push(member);
    members.set(m.name, member);
    aEndpoints[m.name] = { address: `127.0.1.${11 + i}`, port: member.port };
  }
  const api = await httpMember('api-only', '127.0.1.21');
  servers.push(api);

  const bEndpoints: Record<string, { address: string; port: number }> = {};
  for (const [i, m] of b.pools[0]!.members.entries()) {
    const address = `127.0.2.${11 + i}`;
    const member = await httpMember(m.name, address, 0, seedMemberCertificate());
    servers.push(member);
    bEndpoints[m.name] = { address, port: member.port };
  }

  const cEndpoints: Record<string, { address: string; port: number }> = {};
  for (const [i, m] of c.pools[0]!.members.entries()) {
    const member = await tcpMember(m.name, `127.0.3.${11 + i}`);
    servers.push(member);
    cEndpoints[m.name] = { address: `127.0.3.${11 + i}`, port: member.port };
  }

  const aPool = a.pools[0]!;
  const tenantA: TenantSnapshot = {
    ...a,
    vips: [
      mapVip(a.vips[0]!, A, ports.a, {
        routes: vip({ name: 'web', address: A, port: ports.a, protocol: 'http' }, [
          { name: 'wild', priority: 10, match: { host: '*.api.a.example' }, pool: 'api' },
          { name: 'by-header', priority: 20, match: { header: { name: 'X-Pool', value: 'api' } }, pool: 'api' },
        ]).routes,
      }),
      vip({ name: 'noroute', address: A, port: ports.aNoRoute, protocol: 'http' }),
    ],
    pools: [
      mapMembers(aPool, aEndpoints, { ...aPool.healthCheck!, ...FAST_CHECK }),
      pool({ name: 'api' }, [{ name: 'api-1', address: '127.0.1.21', port: api.port }]),
    ],
  };
  const tenantB: TenantSnapshot = {
    ...b,
    vips: [mapVip(b.vips[0]!, B, ports.b)],
    pools: [mapMembers(b.pools[0]!, bEndpoints, { ...b.pools[0]!.healthCheck!, ...FAST_CHECK })],
    allocation: { ...b.allocation, requestsPerSecond: 10 },
  };
  const tenantC: TenantSnapshot = {
    ...c,
    vips: [mapVip(c.vips[0]!, C, ports.c, { allowlist: ['127.0.0.1/32'] })],
    pools: [mapMembers(c.pools[0]!, cEndpoints, { ...c.pools[0]!.healthCheck!, ...FAST_CHECK })],
  };
  return {
    ...seed,
    // The Runtime API on the local admin socket alone (mTLS listeners are tested in runtime-mtls.test.ts).
    node: {
      ...seed.node,
      runtimeAddress: { host: '127.0.0.1', port: ports.runtime },
      masterAddress: null,
      runtimeTls: null,
      socketDir: configDir,
    },
    tenants: [tenantA, tenantB, tenantC],
  };
}

const adminSocket = () => join(configDir, 'admin.sock');

async function serverStatus(backend: string): Promise<Record<string, string>> {
  const rows = await showStat(adminSocket());
  return Object.fromEntries(
    rows.filter((r) => r.pxname === backend && r.svname !== 'BACKEND').map((r) => [r.svname!, r.status!]),
  );
}

const getA = (headers: Record<string, string> = {}, port = ports.a) =>
  request({ host: A, port, headers: { host: 'a.example.com', ...headers } });
const getB = () =>
  request({
    host: B,
    port: ports.b,
    headers: { host: 'b.example.com' },
    tls: { ca: CERT.chainPem, servername: 'b.example.com' },
  });

beforeAll(async () => {
  configDir = mkdtempSync(join(tmpdir(), 'switchyard-haproxy-it-'));
  const snapshot = await buildSnapshot();
  const check = await validateHaproxySnapshot(snapshot);
  expect(check).toMatchObject({ ok: true });
  const files = { ...renderHaproxy(snapshot), [HAPROXY_FILES.serverState]: '1\n' };
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(configDir, name)), { recursive: true });
    writeFileSync(join(configDir, name), content, { mode: 0o600 });
  }
  haproxy = startHaproxy(join(configDir, HAPROXY_FILES.config));
  const running = haproxy;
  await eventually(
    'haproxy to serve every VIP',
    async () => {
      const a = await getA();
      const states = {
        ...(await serverStatus('be_a_web')),
        ...(await serverStatus('be_b_api')),
        ...(await serverStatus('be_c_ssh')),
      };
      return a.status === 200 && Object.values(states).every((s) => s === 'UP') ? true : undefined;
    },
    15_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\nhaproxy said:\n${running.output()}`);
  });
});

afterAll(async () => {
  await haproxy?.stop();
  await Promise.all(servers.map((s) => s.close()));
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

describe('the seed configuration served by a real HAProxy', () => {
  it('spreads requests over every member and tells them who the client was', async () => {
    const answers = await Promise.all(Array.from({ length: 12 }, () => getA()));
    expect(answers.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(new Set(answers.map((r) => r.headers['x-member']))).toEqual(new Set(['web-1', 'web-2', 'web-3']));
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ xff: '127.0.0.1', proto: 'http' });
  });

  it('when a client has the persistence cookie, then it stays on the same member', async () => {
    const first = await getA();
    const cookie = String(first.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
    // Opaque: a hash per member, never its name (see request-rules.test.ts for persistence across renders).
    expect(cookie).toMatch(/^SRVID=[0-9a-f]{16}$/);
    const again = await Promise.all(Array.from({ length: 10 }, () => getA({ cookie })));
    expect(new Set(again.map((r) => r.headers['x-member']))).toEqual(new Set([first.headers['x-member']]));
  });

  it('routes a one-label wildcard host and a header to their pool, anything else the VIP answers to the default pool', async () => {
    expect((await getA({ host: 'x.api.a.example' })).headers['x-member']).toBe('api-only');
    expect((await getA({ host: 'X.API.a.example:8080' })).headers['x-member']).toBe('api-only');
    // Two labels match no route and are none of the VIP's names: refused, not sent to the default pool.
    expect((await getA({ host: 'x.y.api.a.example' })).status).toBe(421);
    expect((await getA({ host: 'a.example.com', 'x-pool': 'web' })).headers['x-member']).toMatch(/^web-/);
    expect((await getA({ 'x-pool': 'api' })).headers['x-member']).toBe('api-only');
  });

  it('when a VIP has no default pool and no route matches, then it answers 503', async () => {
    expect((await getA({}, ports.aNoRoute)).status).toBe(503);
  });

  it('passes bytes both ways through the TCP VIP', async () => {
    const insider = await tcpExchange({ host: C, port: ports.c, localAddress: '127.0.0.1' }, 'ping-42\n', 'ping-42\n');
    expect(insider.received).toMatch(/^hello from ssh-\d\nping-42\n$/);
  });

  it('when a client is outside the allowlist, then its connection is closed unanswered', async () => {
    const denied = async () =>
      Number((await showStat(adminSocket())).find((r) => r.pxname === 'fe_c_ssh' && r.svname === 'FRONTEND')!.dcon);
    const before = await denied();
    const outsider = await tcpExchange({ host: C, port: ports.c, localAddress: '127.0.0.99' }, 'ping\n', 'hello');
    // HAProxy accepts and resets at once; a reset can even beat the client's own connect event.
    expect(outsider).toMatchObject({ received: '', closedByPeer: true });
    expect(outsider.error).not.toBe('ECONNREFUSED');
    expect(await denied()).toBe(before + 1);
  });

  it('terminates TLS with the tenant certificate and re-encrypts to its TLS members, verified by its CA, after an HTTPS check passed', async () => {
    const rows = (await showStat(adminSocket())).filter((r) => r.pxname === 'be_b_api' && r.svname !== 'BACKEND');
    // A leading "* " marks a check running right now.
    expect(rows.map((r) => [r.status, r.check_status?.replace(/^\* /, '')])).toEqual([
      ['UP', 'L7OK'],
      ['UP', 'L7OK'],
    ]);
    // One request: the next test measures tenant b's 10 req/s cap from an empty window.
    const answer = await getB();
    expect(answer.status).toBe(200);
    expect(answer.peerFingerprint).toBe(CERT.fingerprintSha256);
    // The member saw TLS with the pool's fixed SNI (both passed their TLS checks, verified, above).
    expect(JSON.parse(answer.body)).toMatchObject({ proto: 'https', servername: 'api.b.internal', client: null });
  });

  it('answers 429 once a tenant passes its cap in the map file, and keeps serving the cap while refusing the rest', async () => {
    // Two seconds of back-to-back requests, far above the cap of 10 req/s (bounded in count too).
    const started = Date.now();
    const statuses: number[] = [];
    while (Date.now() - started < 2000 && statuses.length < 2000) statuses.push((await getB()).status);
    const elapsedS = (Date.now() - started) / 1000;
    const served = statuses.filter((s) => s === 200).length;
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    // A 1-s window that counts only admitted requests: about 10 per second, plus at most one window's burst.
    expect(served).toBeGreaterThanOrEqual(Math.floor(0.9 * 10 * elapsedS));
    expect(served).toBeLessThanOrEqual(10 * (elapsedS + 1));
  });

  it('when the threshold is changed in the map at runtime, then the limit follows without a reload', async () => {
    const map = join(configDir, HAPROXY_FILES.capsMap);
    expect(await runtimeCommand(adminSocket(), `set map ${map} a 1`)).toBe('\n');
    const statuses: number[] = [];
    for (let i = 0; i < 30 && !statuses.includes(429); i++) statuses.push((await getA()).status);
    expect(statuses).toContain(429);
    await runtimeCommand(adminSocket(), `set map ${map} a 20000`);
    expect((await getA()).status).toBe(200);
  });

  it('when a member stops, then the health check takes it out and traffic goes to the others', async () => {
    await members.get('web-2')!.close();
    await eventually(
      'web-2 to be marked DOWN',
      async () => ((await serverStatus('be_a_web'))['web-2'] === 'DOWN' ? true : undefined),
      10_000,
    );
    const answers = await Promise.all(Array.from({ length: 12 }, () => getA()));
    expect(answers.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(new Set(answers.map((r) => r.headers['x-member']))).toEqual(new Set(['web-1', 'web-3']));
  });
});
