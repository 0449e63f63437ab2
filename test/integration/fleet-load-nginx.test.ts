import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wrk } from '../../bench/support.js';
import type { HeldState } from '../../src/domain/nginx-runtime.js';
import type { Agent } from '../../src/fleet/agent/agent.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeCert } from '../support/certs.js';
import { channelRequest, type ChannelClientTls } from '../support/nginx-lua-harness.js';
import {
  converged,
  expectOk,
  memoryLogger,
  nginxWorkers,
  startFastAgent,
  startNginx,
  type ProxyProcess,
} from './agent-support.js';
import { eventually, freePort, listen, request, untilVipAnswers } from './haproxy-render-support.js';

/**
 * Issue 15's fleet load test on an NGINX node: wrk (keep-alive, 50 connections, 12 s) through the
 * VIP of a node that runs the rendered config with the Switchyard Lua module, while the API makes
 * 100 member changes (weights, add, remove, drain, disable, backup): not one failed or non-2xx
 * request, and no reload (the agent reloaded nothing, the master kept its workers). Then, under
 * wrk again, structural writes (a new VIP, a new pool, a route, an HTTPS VIP with its
 * certificate): each reloads the node exactly when its dry run said it would, and the reloads and
 * what wrk saw across them are counted and printed. GET /v1/plan and dry runs say which is which
 * before either is made. Asserted by counts, never by timing; the reload phase's socket errors
 * (keep-alive connections nginx closes as old workers exit) are reported, not judged.
 * Loopback only; wrk stops by itself; only processes started here are stopped, by PID.
 */
const VIP = '127.0.0.94';
const MEMBERS = { m1: '127.0.7.21', m2: '127.0.7.22', m3: '127.0.7.23', m4: '127.0.7.24' } as const;
type MemberName = keyof typeof MEMBERS;
const NODE = 'ngx-load';
const UPSTREAM = 't_load_web';
const WRK_RUNTIME_S = 12;
const WRK_STRUCTURAL_S = 10;

interface CountingMember {
  readonly port: number;
  count(): number;
  close(): Promise<void>;
}

/** A member that counts what it served; it keeps idle connections longer than nginx does, so it never closes one under nginx. */
async function countingMember(name: string, host: string): Promise<CountingMember> {
  let served = 0;
  const server = http.createServer((req, res) => {
    if (req.url !== '/healthz') served++;
    res.writeHead(200, { 'x-member': name, 'content-type': 'text/plain' }).end(name);
  });
  server.keepAliveTimeout = 120_000;
  const port = await listen(server, host);
  return {
    port,
    count: () => served,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let app: TestApp;
let root: string;
let configDir: string;
let vipPort: number;
let channelPort: number;
let agent: Agent | undefined;
let nginx: ProxyProcess | undefined;
let own: ChannelClientTls;
let token: string;
const agentLog = memoryLogger();
const members = new Map<MemberName, CountingMember>();

const member = (name: MemberName, extra: Record<string, unknown> = {}) => ({
  name,
  address: MEMBERS[name],
  port: members.get(name)!.port,
  ...extra,
});
const reloads = () => agentLog.lines().filter((l) => l.msg === 'applied and reloaded').length;
const nodePlan = (plan: { nodes: { node: string }[] }) => plan.nodes.find((n) => n.node === NODE) as any;

function startAgent(): void {
  agent = startFastAgent(
    app.url,
    { name: NODE, kind: 'nginx', configDir, socket: join(root, 'master.sock'), token },
    agentLog.logger,
  );
}

/** True once the node holds the upstream exactly as the control plane last rendered it (at `atLeast` or later). */
async function holdsRendered(atLeast: number): Promise<true | undefined> {
  const config = (await app.admin('GET', `/v1/nodes/${NODE}/config`)).body;
  if (config.revision < atLeast) return undefined;
  const line = (config.files['runtime-state.jsonl'] as string)
    .split('\n')
    .find((l) => l.startsWith(`{"upstream":${JSON.stringify(UPSTREAM)}`));
  const want = line === undefined ? undefined : (JSON.parse(line) as { hash: string }).hash;
  const res = await channelRequest({ host: '127.0.0.1', port: channelPort }, own, 'GET', '/switchyard/v1/state');
  return want !== undefined && (res.body as HeldState).upstreams[UPSTREAM]?.hash === want ? true : undefined;
}

/**
 * The i-th of the 100 member changes. m1 is never drained, disabled, removed or made a backup,
 * and keeps a weight of at least 1, so the member set always has a member for every request.
 */
function change(i: number): { method: string; path: string; body?: unknown } {
  const at = (m: MemberName) => `/v1/tenants/load/pools/web/members/${m}`;
  switch (i % 10) {
    case 0:
      return { method: 'PATCH', path: at('m1'), body: { weight: 1 + ((i * 37) % 256) } };
    case 1:
      return { method: 'PATCH', path: at('m2'), body: { state: 'drain' } };
    case 2:
      return { method: 'PATCH', path: at('m3'), body: { state: 'disabled' } };
    case 3:
      return { method: 'PATCH', path: at('m2'), body: { state: 'enabled' } };
    case 4:
      return { method: 'POST', path: '/v1/tenants/load/pools/web/members', body: member('m4') };
    case 5:
      return { method: 'PATCH', path: at('m3'), body: { state: 'enabled' } };
    case 6:
      return { method: 'PATCH', path: at('m4'), body: { backup: true } };
    case 7:
      return { method: 'PATCH', path: at('m2'), body: { weight: (i * 13) % 257 } };
    case 8:
      return { method: 'DELETE', path: at('m4') };
    default:
      return { method: 'PATCH', path: at('m3'), body: { weight: 1 + ((i * 7) % 256) } };
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-load-ngx-'));
  configDir = join(root, 'etc');
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_LEADER_RETRY_MS: '100',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
  });
  vipPort = await freePort(VIP);
  channelPort = await freePort('127.0.0.1');
  for (const [name, address] of Object.entries(MEMBERS))
    members.set(name as MemberName, await countingMember(name, address));
  // A reservation far above what wrk reaches here: the tenant's caps refuse nothing.
  await expectOk(app, 'POST', '/v1/tenants', {
    id: 'load',
    proxyKind: 'nginx',
    reservation: { vcpu: 4, memoryMb: 8192 },
  });
  await expectOk(app, 'POST', '/v1/tenants/load/pools', {
    name: 'web',
    healthCheck: { type: 'http', path: '/healthz', intervalMs: 500, timeoutMs: 300 },
  });
  await expectOk(app, 'PUT', '/v1/tenants/load/pools/web/members', {
    members: [member('m1'), member('m2'), member('m3')],
  });
  await expectOk(app, 'POST', '/v1/tenants/load/vips', {
    name: 'www',
    address: VIP,
    port: vipPort,
    protocol: 'http',
    defaultPool: 'web',
  });
  const node = await expectOk(app, 'POST', '/v1/nodes', {
    name: NODE,
    kind: 'nginx',
    capacity: { vcpu: 8, memoryMb: 16384 },
    configDir,
    socketDir: root,
    runtimeAddress: { host: '127.0.0.1', port: channelPort },
  });
  token = node.agentToken;
  const credentials = (await app.cp.services.pki.clientCredentials())!;
  own = { ca: credentials.caBundlePem, cert: credentials.certificatePem, key: credentials.keyPem };
  startAgent();
  await converged(app.admin, NODE, 0, 30_000);
  nginx = startNginx(configDir);
  await untilVipAnswers(VIP, vipPort);
  const current = (await app.admin('GET', '/v1/plan')).body.revision as number;
  await converged(app.admin, NODE, current, 30_000);
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await nginx?.stop();
  for (const m of members.values()) await m.close();
  await app?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('an NGINX node under load', () => {
  it('plans a member change as a runtime push with no reload, and a new VIP as a reload', async () => {
    const dryMember = await expectOk(app, 'PATCH', '/v1/tenants/load/pools/web/members/m2?dryRun=true', {
      weight: 7,
    });
    expect(nodePlan(dryMember.plan).reload).toEqual({ pending: false, reasons: [] });
    expect(nodePlan(dryMember.plan).runtime.commands).toEqual([
      { command: `set upstream ${UPSTREAM}`, description: expect.stringContaining('m2 weight 7') },
    ]);
    const dryVip = await expectOk(app, 'POST', '/v1/tenants/load/vips?dryRun=true', {
      name: 'api',
      address: VIP,
      port: await freePort(VIP),
      protocol: 'http',
      defaultPool: 'web',
    });
    expect(nodePlan(dryVip.plan).reload.pending).toBe(true);
    expect(nodePlan(dryVip.plan).reload.reasons.join('; ')).toMatch(/api/);

    // GET /v1/plan on a real member change before it is pushed: the reconciler waits meanwhile.
    await app.cp.reconciler!.stop();
    try {
      const written = await expectOk(app, 'PATCH', '/v1/tenants/load/pools/web/members/m2', { weight: 90 });
      const plan = (await app.admin('GET', '/v1/plan')).body;
      expect(plan.revision).toBeGreaterThanOrEqual(written.revision);
      expect(nodePlan(plan).reload).toEqual({ pending: false, reasons: [] });
      expect(nodePlan(plan).runtime).toMatchObject({
        reachable: true,
        commands: [{ command: `set upstream ${UPSTREAM}`, description: expect.stringContaining('m2 weight 90') }],
        notes: ['1 runtime change(s) go live through the runtime channel, no reload'],
      });
    } finally {
      app.cp.reconciler!.start();
    }
    const revision = (await app.admin('GET', '/v1/plan')).body.revision as number;
    await eventually('the weight pushed', () => holdsRendered(revision), 10_000);
  });

  it('100 member changes during 12 s of keep-alive wrk: no failed or non-2xx request and no reload', async () => {
    const workers = await nginxWorkers(nginx!.pid);
    expect(workers.length).toBeGreaterThan(0);
    const reloadsBefore = reloads();
    const servedBefore = Object.fromEntries([...members].map(([name, m]) => [name, m.count()]));
    const load = wrk(`http://${VIP}:${vipPort}/`, { seconds: WRK_RUNTIME_S, connections: 50, threads: 2 });
    let last = 0;
    const changes = (async () => {
      await new Promise((r) => setTimeout(r, 500));
      for (let i = 0; i < 100; i++) {
        const { method, path, body } = change(i);
        last = (await expectOk(app, method, path, body)).revision ?? last;
        await new Promise((r) => setTimeout(r, 80));
      }
    })();
    const [result] = await Promise.all([load, changes]);
    const served = Object.fromEntries([...members].map(([name, m]) => [name, m.count() - servedBefore[name]!]));
    console.log(
      `NGINX node, 100 member changes under wrk -c50 ${WRK_RUNTIME_S}s: ${JSON.stringify({ ...result, served, reloads: reloads() - reloadsBefore })}`,
    );
    expect(result.requests).toBeGreaterThan(1000);
    expect(result.socketErrors).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(reloads()).toBe(reloadsBefore);
    expect(await nginxWorkers(nginx!.pid)).toEqual(workers);
    // Every member served while it was in the set; the changes reached the node: it ends on the last one.
    for (const name of ['m1', 'm2', 'm3', 'm4']) expect(served[name], name).toBeGreaterThan(0);
    await eventually('the last change held on the node', () => holdsRendered(last), 10_000);
    expect(reloads()).toBe(reloadsBefore);
  }, 60_000);

  it('structural changes under wrk: each write reloads the node exactly when its plan says so, and the reloads are counted', async () => {
    const workersBefore = await nginxWorkers(nginx!.pid);
    const reloadsBefore = reloads();
    const apiPort = await freePort(VIP);
    const securePort = await freePort(VIP);
    const cert = makeCert('secure.load.test');
    /** Each write in turn: what its dry run planned for the node, and whether the node reloaded for it. */
    const made: { change: string; planned: string[]; reloaded: boolean }[] = [];
    const step = async (change: string, method: string, path: string, body: unknown) => {
      const dry = await expectOk(app, method, `${path}?dryRun=true`, body);
      const before = reloads();
      const written = await expectOk(app, method, path, body);
      await converged(app.admin, NODE, written.revision, 20_000);
      made.push({ change, planned: nodePlan(dry.plan).reload.reasons, reloaded: reloads() > before });
    };
    const load = wrk(`http://${VIP}:${vipPort}/`, { seconds: WRK_STRUCTURAL_S, connections: 50, threads: 2 });
    const changes = (async () => {
      await new Promise((r) => setTimeout(r, 500));
      // A new VIP: GET /v1/plan names it as a reload while the node's agent is away.
      await agent!.stop();
      const vip = await expectOk(app, 'POST', '/v1/tenants/load/vips', {
        name: 'api',
        address: VIP,
        port: apiPort,
        protocol: 'http',
        defaultPool: 'web',
      });
      const plan = nodePlan((await app.admin('GET', '/v1/plan')).body);
      expect(plan.reload.pending).toBe(true);
      const before = reloads();
      startAgent();
      await converged(app.admin, NODE, vip.revision, 20_000);
      made.push({ change: 'VIP api', planned: plan.reload.reasons, reloaded: reloads() > before });
      await step('pool alt', 'POST', '/v1/tenants/load/pools', { name: 'alt' });
      await step('members of alt', 'PUT', '/v1/tenants/load/pools/alt/members', { members: [member('m1')] });
      await step('route alt', 'POST', '/v1/tenants/load/vips/www/routes', {
        name: 'alt',
        priority: 1,
        match: { pathPrefix: '/alt/' },
        pool: 'alt',
      });
      await step('certificate secure', 'POST', '/v1/tenants/load/certificates', { name: 'secure', ...cert });
      await step('HTTPS VIP secure', 'POST', '/v1/tenants/load/vips', {
        name: 'secure',
        address: VIP,
        port: securePort,
        protocol: 'https',
        certificate: 'secure',
        defaultPool: 'web',
      });
    })();
    const [result] = await Promise.all([load, changes]);
    const reloaded = reloads() - reloadsBefore;
    console.log(
      `NGINX node, ${made.length} writes under wrk -c50 ${WRK_STRUCTURAL_S}s: ${reloaded} reload(s); ${JSON.stringify(made)}; wrk ${JSON.stringify(result)}`,
    );
    // A write reloads the node exactly when its plan said it would, and says why.
    for (const m of made) expect(m.reloaded, JSON.stringify(m)).toBe(m.planned.length > 0);
    expect(made.find((m) => m.change === 'VIP api')!.planned).toContain('VIP load/api added');
    expect(made.find((m) => m.change === 'members of alt')).toMatchObject({ planned: [], reloaded: false });
    expect(reloaded).toBe(made.filter((m) => m.reloaded).length);
    expect(reloaded).toBeGreaterThanOrEqual(3);
    expect((await nginxWorkers(nginx!.pid)).some((pid) => workersBefore.includes(pid))).toBe(false);
    expect(result.requests).toBeGreaterThan(1000);
    // What the structural changes made is served.
    expect((await request({ host: VIP, port: apiPort, path: '/' })).status).toBe(200);
    expect((await request({ host: VIP, port: vipPort, path: '/alt/x' })).headers['x-member']).toBe('m1');
    const https = await request({
      host: VIP,
      port: securePort,
      path: '/',
      tls: { ca: cert.certificate, servername: 'secure.load.test' },
    });
    expect(https.status).toBe(200);
  }, 90_000);
});
