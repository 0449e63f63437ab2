import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/fleet/agent/agent.js';
import type { HeldState, NginxUpstream } from '../../src/domain/nginx-runtime.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { channelRequest, type ChannelClientTls } from '../support/nginx-lua-harness.js';
import { TestPki } from '../support/openssl.js';
import {
  converged,
  expectOk,
  memoryLogger,
  nginxWorkers,
  startFastAgent,
  startNginx,
  type ProxyProcess,
} from './agent-support.js';
import { eventually, freePort, httpMember, request, type Closable, untilVipAnswers } from './haproxy-render-support.js';

/**
 * The reconciler against a real NGINX node: the config the control plane rendered for it (the
 * Switchyard Lua module, runtime-state.jsonl, the runtime channel's mTLS server block with the
 * node certificate its fleet PKI issued for the runtimeAddress), applied by the node's agent and
 * run by nginx on loopback, with real members behind the VIP. It proves the channel's TLS, the
 * reconcile loop (changes pushed and live, seen in traffic, with no reload), member health from
 * the module's checks in the API, the plan and node status. Every wait is bounded; only the
 * processes this file started are stopped, by their PIDs.
 */

const HOST = '127.0.0.1';
const VIP = '127.0.0.93';
const MEMBER_ADDRESSES = { m1: '127.0.9.11', m2: '127.0.9.12', m3: '127.0.9.13' } as const;
type MemberName = keyof typeof MEMBER_ADDRESSES;
const NODE = 'ngx-rt';
const UPSTREAM = 't_t1_web';

let app: TestApp;
let root: string;
let configDir: string;
let channelPort: number;
let vipPort: number;
let agent: Agent | undefined;
let agentLog: ReturnType<typeof memoryLogger>;
let nginx: ProxyProcess | undefined;
let pki: TestPki;
let own: ChannelClientTls;
const members = new Map<MemberName, Closable & { port: number }>();
/** The revision of the last write before the tests. */
let seeded: number;

async function write(method: string, path: string, body?: unknown): Promise<number> {
  return (await expectOk(app, method, path, body)).revision as number;
}

/** What the node's channel says it holds, asked with the control plane's own client certificate. */
async function held(): Promise<HeldState | undefined> {
  const res = await channelRequest(
    { host: HOST, port: channelPort },
    own,
    'GET',
    '/switchyard/v1/state',
    undefined,
    2000,
  ).catch(() => null);
  return res?.status === 200 ? (res.body as HeldState) : undefined;
}

/** The upstream as the node's latest rendered runtime-state.jsonl has it (at `atLeast` or later). */
async function desired(upstream: string, atLeast: number): Promise<{ hash: string; value: NginxUpstream } | undefined> {
  const config = (await app.admin('GET', `/v1/nodes/${NODE}/config`)).body;
  if (config.revision < atLeast) return undefined;
  const file = config.files['runtime-state.jsonl'] as string;
  for (const line of file.split('\n').slice(1)) {
    if (line === '') continue;
    const entry = JSON.parse(line) as { upstream?: string; hash: string; value: NginxUpstream };
    if (entry.upstream === upstream) return entry;
  }
  return undefined;
}

/**
 * The upstream's peers as `name weight admin[ backup]`, once the node holds exactly what the
 * control plane rendered at `atLeast` or later (same hash); undefined until then.
 */
async function live(upstream: string, atLeast: number): Promise<string | undefined> {
  const [want, has] = await Promise.all([desired(upstream, atLeast), held()]);
  if (want === undefined || has?.upstreams[upstream]?.hash !== want.hash) return undefined;
  return want.value.peers.map((p) => `${p.name} ${p.weight} ${p.admin}${p.backup ? ' backup' : ''}`).join();
}

async function waitLive(what: string, upstream: string, atLeast: number, peers: string): Promise<void> {
  let last: string | undefined;
  await eventually(
    what,
    async () => {
      last = await live(upstream, atLeast);
      return last === peers ? true : undefined;
    },
    10_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; the node last held ${last ?? 'something else than the rendered entry'}`);
  });
}

/** `n` requests through the VIP, a new connection each: how many each member answered. */
async function answers(n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await request({ host: VIP, port: vipPort, path: '/' });
    expect(res.status).toBe(200);
    const member = String(res.headers['x-member']);
    counts[member] = (counts[member] ?? 0) + 1;
  }
  return counts;
}

const nodeStatus = async () => (await app.admin('GET', `/v1/nodes/${NODE}`)).body.status;
const reloads = () => agentLog.lines().filter((l) => l.msg === 'applied and reloaded').length;
const filesOnly = () => agentLog.lines().filter((l) => l.msg === 'applied without a reload').length;

/** One HTTPS request to the channel with the given TLS options: the status, or the error that ended it. */
async function channelStatus(tls: { ca?: string; cert?: string; key?: string }): Promise<number | string> {
  return channelRequest(
    { host: HOST, port: channelPort },
    tls as ChannelClientTls,
    'GET',
    '/switchyard/v1/state',
    undefined,
    3000,
  ).then(
    (res) => res.status,
    (e: NodeJS.ErrnoException) => e.code ?? e.message,
  );
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-ngx-rt-'));
  configDir = join(root, 'etc');
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_LEADER_RETRY_MS: '100',
    SWITCHYARD_RECONCILE_INTERVAL_MS: '300',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '300',
  });
  pki = await TestPki.create();
  channelPort = await freePort(HOST);
  vipPort = await freePort(VIP);
  for (const name of ['m1', 'm2', 'm3'] as const) members.set(name, await httpMember(name, MEMBER_ADDRESSES[name]));
  const member = (name: MemberName) => ({ name, address: MEMBER_ADDRESSES[name], port: members.get(name)!.port });

  await write('POST', '/v1/tenants', { id: 't1', proxyKind: 'nginx', reservation: { vcpu: 1, memoryMb: 512 } });
  await write('POST', '/v1/tenants/t1/pools', {
    name: 'web',
    healthCheck: { type: 'http', path: '/healthz', intervalMs: 300, timeoutMs: 200, rise: 1, fall: 2 },
  });
  await write('PUT', '/v1/tenants/t1/pools/web/members', { members: [member('m1'), member('m2')] });
  seeded = await write('POST', '/v1/tenants/t1/vips', {
    name: 'www',
    address: VIP,
    port: vipPort,
    protocol: 'http',
    defaultPool: 'web',
  });
  const created = await app.admin('POST', '/v1/nodes', {
    name: NODE,
    kind: 'nginx',
    runtimeAddress: { host: HOST, port: channelPort },
    capacity: { vcpu: 2, memoryMb: 1024 },
    configDir,
    socketDir: root,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect(created.body.runtimeCertificate).toMatchObject({ serial: expect.any(String) });
  const credentials = (await app.cp.services.pki.clientCredentials())!;
  own = { ca: credentials.caBundlePem, cert: credentials.certificatePem, key: credentials.keyPem };
  agentLog = memoryLogger();
  agent = startFastAgent(
    app.url,
    { name: NODE, kind: 'nginx', configDir, socket: join(root, 'master.sock'), token: created.body.agentToken },
    agentLog.logger,
  );
  await converged(app.admin, NODE, seeded, 30_000);
  nginx = startNginx(configDir);
  await untilVipAnswers(VIP, vipPort);
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await nginx?.stop();
  for (const m of members.values()) await m.close();
  await app?.stop();
  await pki?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('an NGINX node with a runtime channel, reconciled', () => {
  it('holds the upstream the control plane rendered, read over mutual TLS, and the node reports it live and converged', async () => {
    await waitLive('the upstream on the node', UPSTREAM, seeded, 'm1 100 ready,m2 100 ready');
    expect(Object.keys(await answers(8)).sort()).toEqual(['m1', 'm2']);
    const status = await eventually('the runtime pass recorded', async () => {
      const s = await nodeStatus();
      return s.runtime?.revision >= seeded ? s : undefined;
    });
    expect(status.runtime).toMatchObject({ pending: 0, error: null });
    await expect.poll(async () => (await nodeStatus()).converged, { timeout: 10_000 }).toBe(true);
  });

  it('changes weights, states and the member set live through the channel, without a reload', async () => {
    const workers = await nginxWorkers(nginx!.pid);
    expect(workers.length).toBeGreaterThan(0);
    const reloadsBefore = reloads();
    const filesOnlyBefore = filesOnly();
    const metric = async () => {
      const metrics = (await app.admin('GET', '/metrics')).body as string;
      const re = new RegExp(`^switchyard_runtime_commands_total\\{node="${NODE}",outcome="ok"\\} (\\d+)`, 'm');
      return Number(re.exec(metrics)?.[1] ?? 0);
    };
    const sentBefore = await metric();

    let revision = await write('PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 250 });
    await waitLive('the weight on the node', UPSTREAM, revision, 'm1 250 ready,m2 100 ready');
    const weighted = await answers(30);
    expect(weighted.m1!, JSON.stringify(weighted)).toBeGreaterThan(weighted.m2!);

    revision = await write('PATCH', '/v1/tenants/t1/pools/web/members/m2', { state: 'drain' });
    await waitLive('the drain on the node', UPSTREAM, revision, 'm1 250 ready,m2 100 drain');
    expect(await answers(6)).toEqual({ m1: 6 });

    const m3 = members.get('m3')!;
    await write('POST', '/v1/tenants/t1/pools/web/members', {
      name: 'm3',
      address: MEMBER_ADDRESSES.m3,
      port: m3.port,
    });
    revision = await write('DELETE', '/v1/tenants/t1/pools/web/members/m2');
    // The removal waits for the agent to apply the config of that revision (files only, no reload).
    await waitLive('the new member set on the node', UPSTREAM, revision, 'm1 250 ready,m3 100 ready');
    await eventually('m3 answering', async () => ((await answers(4)).m3 ? true : undefined), 10_000);
    expect(Object.keys(await answers(8)).sort()).toEqual(['m1', 'm3']);

    expect(await nginxWorkers(nginx!.pid)).toEqual(workers);
    expect(reloads()).toBe(reloadsBefore);
    // The agent did get the configs of these revisions: it wrote their files and left nginx alone
    // (its log line may follow its report to the control plane, which the removal waited for).
    await expect.poll(filesOnly, { timeout: 10_000 }).toBeGreaterThan(filesOnlyBefore);
    expect(await metric()).toBeGreaterThanOrEqual(sentBefore + 3);
  });

  it("reports a member's health from the node's own checks in the tenant's status, as HAProxy's are", async () => {
    const up = await eventually('m1 and m3 up in the tenant status', async () => {
      const health = await memberHealth();
      return health.m1?.status === 'UP' && health.m3?.status === 'UP' ? health : undefined;
    });
    expect(up.m1).toMatchObject({ checkStatus: 'L7OK' });
    // m3 stops listening: the module's checks see the connection refused and take it down.
    await members.get('m3')!.close();
    const down = await eventually(
      'm3 down in the tenant status',
      async () => {
        const health = await memberHealth();
        return health.m3?.status === 'DOWN' ? health : undefined;
      },
      10_000,
    );
    expect(down.m3).toMatchObject({ status: 'DOWN', checkStatus: 'L4CON' });
    expect(down.m1).toMatchObject({ status: 'UP' });
    // The balancer skips the down member: every request lands on m1.
    expect(await answers(6)).toEqual({ m1: 6 });
  });

  it('plans a member change as live through the runtime channel and a new VIP as a reload; the dry runs push nothing', async () => {
    const res = await app.admin('PATCH', '/v1/tenants/t1/pools/web/members/m1?dryRun=true', { weight: 30 });
    expect(res.status).toBe(200);
    const plan = (res.body.plan.nodes as { node: string; runtime: any; reload: any }[]).find((n) => n.node === NODE)!;
    expect(plan.runtime).toMatchObject({
      address: `${HOST}:${channelPort}`,
      reachable: true,
      error: null,
      commands: [
        { command: `set upstream ${UPSTREAM}`, description: expect.stringMatching(/m1 weight 30, m3 weight 100/) },
      ],
      notes: ['1 runtime change(s) go live through the runtime channel, no reload'],
    });
    expect(plan.reload).toEqual({ pending: false, reasons: [] });

    const vip = await app.admin('POST', '/v1/tenants/t1/vips?dryRun=true', {
      name: 'api',
      address: VIP,
      port: await freePort(VIP),
      protocol: 'http',
      defaultPool: 'web',
    });
    expect(vip.status, JSON.stringify(vip.body)).toBe(200);
    const vipPlan = (vip.body.plan.nodes as { node: string; reload: any }[]).find((n) => n.node === NODE)!;
    expect(vipPlan.reload.pending).toBe(true);
    expect(vipPlan.reload.reasons.length).toBeGreaterThan(0);

    const current = (await app.admin('GET', '/v1/plan')).body.nodes.find((n: { node: string }) => n.node === NODE);
    expect(current.runtime).toMatchObject({ reachable: true, commands: [] });
    expect(current.reload).toEqual({ pending: false, reasons: [] });
    const revision = (await app.admin('GET', '/v1/plan')).body.revision as number;
    expect(await live(UPSTREAM, revision)).toBe('m1 250 ready,m3 100 ready');
  });

  it('answers only clients with a certificate from the fleet CA', async () => {
    expect(await channelStatus({ ca: own.ca })).toBe(400);
    const stranger = await pki.root('Not Switchyard');
    const client = await pki.issue('switchyard-control-plane', stranger);
    expect(await channelStatus({ ca: own.ca, cert: client.cert, key: client.key })).toBe(400);
    expect(await channelStatus(own)).toBe(200);
  });

  it('when the channel stops answering, the node is not converged and says why; when nginx is back, it holds the whole desired state again', async () => {
    await nginx!.stop();
    nginx = undefined;
    // While nginx shuts down, a pass may see its connection reset; once it is gone, nothing listens.
    const refused = new RegExp(
      `^cannot read the node's runtime channel: nothing listens on tls:127\\.0\\.0\\.1:${channelPort} \\(connection refused\\)`,
    );
    const failing = await eventually('the failure recorded', async () => {
      const s = await nodeStatus();
      return refused.test(s.runtime.error ?? '') ? s : undefined;
    });
    expect(failing.converged).toBe(false);
    expect(failing.waitingFor).toMatch(/^its runtime channel, whose last push failed: /);
    // A change while the node is down reaches its files through the agent; the new nginx loads
    // them and the reconciler pushes whatever else differs.
    const revision = await write('PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 4 });
    nginx = startNginx(configDir);
    await waitLive('the whole state on the restarted node', UPSTREAM, revision, 'm1 4 ready,m3 100 ready');
    await eventually('the failure cleared', async () =>
      (await nodeStatus()).runtime.error === null ? true : undefined,
    );
    expect(await answers(4)).toEqual({ m1: 4 });
  });
});

async function memberHealth(): Promise<Record<string, { status: string; checkStatus: string | null } | undefined>> {
  const list = (await app.admin('GET', '/v1/tenants/t1/status')).body.members as {
    member: string;
    health: { node: string; status: string; checkStatus: string | null }[];
  }[];
  return Object.fromEntries(list.map((m) => [m.member, m.health.find((h) => h.node === NODE)]));
}
