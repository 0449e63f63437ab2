import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onceExitCode, parseAgentOptions, type AgentFlags } from '../../src/cli/agent.js';
import { buildAgent } from '../../src/cli/build-agent.js';
import { loadConfig } from '../../src/config.js';
import type { Agent } from '../../src/fleet/agent/agent.js';
import { ConfigDirLock } from '../../src/fleet/agent/config-dir-lock.js';
import { releasesDirOf } from '../../src/fleet/agent/release-names.js';
import { createLogger } from '../../src/logger.js';
import { startControlPlane, type ControlPlane } from '../../src/main.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeCert, type TestCert } from '../support/certs.js';
import {
  activeRelease,
  adminAt,
  converged,
  expectOk,
  failedReleases,
  flakyHaproxy,
  masterCli,
  memoryLogger,
  nginxWorkers,
  nodeError,
  onDisk,
  runCli,
  startHaproxy,
  startNginx,
  type ProxyProcess,
} from './agent-support.js';
import { eventually, freePort, httpMember, listen, request, type Closable } from './haproxy-render-support.js';

/**
 * The agent end to end on loopback: the real control plane on real PostgreSQL, real haproxy
 * (master-worker) and real nginx, each managed by an agent, in front of small node backends.
 * Two control planes on two databases, because every tenant renders on every node and the two
 * proxies must not share VIP addresses. Only 127.0.0.0/8; every wait is bounded; only the
 * processes started here are stopped, by their PIDs.
 */

const FAST_CHECK = { type: 'http', intervalMs: 300, timeoutMs: 200, rise: 1, fall: 2 };
const H = { vip: '127.0.0.71', tls: '127.0.0.75', busy: '127.0.0.73', members: ['127.0.4.11', '127.0.4.12'] };
const N = { vip: '127.0.0.72', busy: '127.0.0.74', members: ['127.0.4.21', '127.0.4.22'] };

let root: string;
const servers: Closable[] = [];
const proxies: ProxyProcess[] = [];
const agents: Agent[] = [];

interface World {
  app: TestApp;
  configDir: string;
  token: string;
  vipPort: number;
  memberPorts: number[];
}

const RESERVATION = { vcpu: 0.01, memoryMb: 1 } as const;

async function world(
  app: TestApp,
  kind: 'haproxy' | 'nginx',
  name: string,
  vip: string,
  members: string[],
): Promise<World> {
  const configDir = join(root, name, 'etc');
  const vipPort = await freePort(vip);
  const backends = await Promise.all(members.map((address, i) => httpMember(`${name}-m${i + 1}`, address)));
  servers.push(...backends);
  // A reservation the test's requests stay well under (100 req/s, 10 connections): caps are not what this file tests.
  await expectOk(app, 'POST', '/v1/tenants', { id: 't1', reservation: RESERVATION });
  await expectOk(app, 'POST', '/v1/tenants/t1/pools', {
    name: 'web',
    healthCheck: { ...FAST_CHECK, path: '/healthz' },
  });
  await expectOk(app, 'PUT', '/v1/tenants/t1/pools/web/members', {
    members: backends.map((b, i) => ({ name: `m${i + 1}`, address: members[i], port: b.port })),
  });
  await expectOk(app, 'POST', '/v1/tenants/t1/vips', {
    name: 'www',
    address: vip,
    port: vipPort,
    protocol: 'http',
    defaultPool: 'web',
  });
  const node = await expectOk(app, 'POST', '/v1/nodes', {
    name,
    kind,
    capacity: { vcpu: 8, memoryMb: 16384 },
    configDir,
    // Where HAProxy's admin socket and the agent's master socket live (docs/operating-nodes.md's /run/switchyard).
    socketDir: join(root, name),
    ...(kind === 'haproxy' && { runtimeAddress: { host: '127.0.0.1', port: await freePort('127.0.0.1') } }),
  });
  return { app, configDir, token: node.agentToken as string, vipPort, memberPorts: backends.map((b) => b.port) };
}

function flags(w: World, name: string, kind: string, extra: Partial<AgentFlags> = {}): AgentFlags {
  return {
    controlPlane: w.app.url,
    node: name,
    kind,
    configDir: w.configDir,
    masterSocket: join(root, name, 'master.sock'),
    haproxyBin: 'haproxy',
    nginxBin: 'nginx',
    wait: '2',
    heartbeat: '1',
    reloadTimeout: '10',
    keepReleases: '3',
    ...extra,
  };
}

const FAST_RETRY = { retry: { initialMs: 100, maxMs: 500, factor: 2 }, slowRetryMs: 500 };

async function served(vip: string, port: number): Promise<string> {
  const res = await request({ host: vip, port, path: '/' });
  expect(res.status).toBe(200);
  return String(res.headers['x-member']);
}

let h: World;
let n: World;
let tls: { cert: TestCert; port: number; fingerprint: string };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-agent-'));
  const [hApp, nApp] = await Promise.all([startTestApp(), startTestApp()]);
  [h, n] = await Promise.all([
    world(hApp, 'haproxy', 'edge-h', H.vip, H.members),
    world(nApp, 'nginx', 'edge-n', N.vip, N.members),
  ]);
  // Tenant t2 on the HAProxy node: HTTPS with its own certificate, for the held-tenant case.
  const cert = makeCert('shop.t2.test');
  const port = await freePort(H.tls);
  await expectOk(hApp, 'POST', '/v1/tenants', { id: 't2', reservation: RESERVATION });
  await expectOk(hApp, 'POST', '/v1/tenants/t2/certificates', { name: 'shop', ...cert });
  await expectOk(hApp, 'POST', '/v1/tenants/t2/pools', { name: 'shop' });
  await expectOk(hApp, 'PUT', '/v1/tenants/t2/pools/shop/members', {
    members: [{ name: 's1', address: H.members[0], port: h.memberPorts[0] }],
  });
  await expectOk(hApp, 'POST', '/v1/tenants/t2/vips', {
    name: 'shop',
    address: H.tls,
    port,
    protocol: 'https',
    certificate: 'shop',
    defaultPool: 'shop',
  });
  tls = { cert, port, fingerprint: '' };
}, 60_000);

/** How each control plane is stopped at the end (the HAProxy one is replaced mid-test). */
const stoppers: (() => Promise<void>)[] = [
  () => h?.app.stop() ?? Promise.resolve(),
  () => n?.app.stop() ?? Promise.resolve(),
];

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(proxies.map((p) => p.stop()));
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(stoppers.map((stop) => stop()));
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('HAProxy node', () => {
  const name = 'edge-h';
  const socket = () => join(root, name, 'master.sock');
  const flag = () => join(root, name, 'refuse-every-config');
  let haproxy: ProxyProcess;
  const logs = memoryLogger();

  it('switchyard agent --once writes the files before haproxy runs (exit 0), and its exit codes say what went wrong', async () => {
    const env = { SWITCHYARD_AGENT_TOKEN: h.token, LOG_LEVEL: 'warn' };
    const base = [
      'agent',
      '--once',
      '--node',
      name,
      '--kind',
      'haproxy',
      '--config-dir',
      h.configDir,
      '--master-socket',
      socket(),
    ];
    const closed = await freePort('127.0.0.1');
    // While another agent holds the directory (this test process, through the agent's own lock),
    // a run refuses at once with what to do, and writes nothing.
    const releases = releasesDirOf(h.configDir);
    mkdirSync(releases, { recursive: true });
    const holder = new ConfigDirLock(releases, h.configDir);
    await holder.acquire();
    const locked = await runCli([...base, '--control-plane', h.app.url], env).finally(() => holder.release());
    expect(locked).toMatchObject({
      code: 1,
      output: expect.stringContaining(`another agent (pid ${process.pid} on ${hostname()}, since`),
    });
    expect(locked.output).toContain(`manages ${h.configDir}: stop it first, or give this agent another --config-dir`);
    expect(existsSync(h.configDir)).toBe(false);
    // The run that applies goes alone: a run started beside it would find the directory locked.
    const ok = await runCli([...base, '--control-plane', h.app.url], env);
    const [noToken, unreachable] = await Promise.all([
      runCli([...base, '--control-plane', h.app.url], { SWITCHYARD_AGENT_TOKEN: '', LOG_LEVEL: 'warn' }),
      runCli([...base, '--control-plane', `http://127.0.0.1:${closed}`], env),
    ]);
    expect(ok.code, ok.output).toBe(0);
    expect(noToken).toMatchObject({ code: 1, output: expect.stringContaining('SWITCHYARD_AGENT_TOKEN') });
    expect(unreachable.code, unreachable.output).toBe(3);
    expect(activeRelease(h.configDir)).toMatch(/^etc\.releases\/\d{8}T\d{9}Z-[0-9a-f]{16}$/);
    expect(onDisk(h.configDir, 'haproxy.cfg')).toContain(`bind ${H.vip}:${h.vipPort}`);
    const { node } = await converged(h.app.admin, name);
    expect(node.status).toMatchObject({ reloadCount: 0, lastError: null });
  });

  it('serves a tenant’s VIP through haproxy once it starts on those files, and the agent heartbeats', async () => {
    haproxy = startHaproxy(h.configDir, socket());
    proxies.push(haproxy);
    await eventually(
      'traffic through haproxy',
      async () => ((await served(H.vip, h.vipPort)).startsWith('edge-h-m') ? true : undefined),
      10_000,
    );
    const agent = buildAgent(
      parseAgentOptions(flags(h, name, 'haproxy', { haproxyBin: flakyHaproxy(join(root, name), flag()) }), {
        SWITCHYARD_AGENT_TOKEN: h.token,
      }),
      logs.logger,
      FAST_RETRY,
    );
    agents.push(agent);
    void agent.run();
    const node = await eventually('a heartbeat with versions', async () => {
      const body = (await h.app.admin('GET', `/v1/nodes/${name}`)).body;
      return body.status.proxyVersion && body.status.agentVersion ? body : undefined;
    });
    expect(node.status.proxyVersion).toMatch(/^HAProxy version 2\./);
    const res = await request({
      host: H.tls,
      port: tls.port,
      tls: { ca: tls.cert.certificate, servername: 'shop.t2.test' },
    });
    expect(res.status).toBe(200);
    tls.fingerprint = res.peerFingerprint!;
  });

  it('a structural change (health-check path) causes exactly one reload, with the server states carried over', async () => {
    const before = await masterCli(socket()).showProc();
    const release = activeRelease(h.configDir);
    const write = await expectOk(h.app, 'PATCH', '/v1/tenants/t1/pools/web', {
      healthCheck: { ...FAST_CHECK, path: '/ready' },
    });
    const { node } = await converged(h.app.admin, name, write.revision);
    const after = await masterCli(socket()).showProc();
    expect(after.master.reloads).toBe(before.master.reloads + 1);
    expect(after.workers.filter((w) => w.current).map((w) => w.pid)).not.toContain(
      before.workers.find((w) => w.current)!.pid,
    );
    expect(node.status).toMatchObject({ reloadCount: 1, lastError: null });
    expect(activeRelease(h.configDir)).not.toBe(release);
    expect(onDisk(h.configDir, 'haproxy.cfg')).toContain('/ready');
    expect(onDisk(h.configDir, 'state/server-state')).toMatch(/^1\n# be_id .*\n.* be_t1_web \d+ m1 /s);
    expect(await served(H.vip, h.vipPort)).toMatch(/^edge-h-m/);
  });

  it('a weight-only change writes the new files and does not reload', async () => {
    const before = await masterCli(socket()).showProc();
    const worker = before.workers.find((w) => w.current)!;
    const write = await expectOk(h.app, 'PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 7 });
    const { node } = await converged(h.app.admin, name, write.revision);
    const after = await masterCli(socket()).showProc();
    const same = after.workers.find((w) => w.current)!;
    expect(same.pid).toBe(worker.pid);
    expect(same.uptimeSec).toBeGreaterThanOrEqual(worker.uptimeSec);
    expect(after.master.reloads).toBe(before.master.reloads);
    expect(node.status.reloadCount).toBe(1);
    expect(onDisk(h.configDir, 'haproxy.cfg')).toMatch(/server m1 127\.0\.4\.11:\d+ .*weight 7/);
  });

  it('a tenant whose certificate the proxy rejects is held by the control plane; the node keeps serving its last good part', async () => {
    await h.app.database.handle.db
      .updateTable('certificates')
      .set({ chain_pem: '-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' })
      .where('tenant_id', '=', 't2')
      .execute();
    const workers = (await masterCli(socket()).showProc()).workers.map((w) => w.pid);
    const write = await expectOk(h.app, 'PATCH', '/v1/tenants/t2/vips/shop', { timeouts: { clientMs: 12345 } });
    const { config, node } = await converged(h.app.admin, name, write.revision);
    expect(config.heldTenants).toEqual([
      expect.objectContaining({ tenant: 't2', error: expect.stringMatching(/certificate|PEM|SSL/i) }),
    ]);
    // The directive, not the bare number: the file's server cookies are random hex, which can hold "12345".
    expect(onDisk(h.configDir, 'haproxy.cfg')).not.toContain('timeout client 12345ms');
    expect(node.status).toMatchObject({ reloadCount: 1, lastError: null });
    expect((await masterCli(socket()).showProc()).workers.map((w) => w.pid)).toEqual(workers);
    const res = await request({
      host: H.tls,
      port: tls.port,
      tls: { ca: tls.cert.certificate, servername: 'shop.t2.test' },
    });
    expect(res.peerFingerprint).toBe(tls.fingerprint);
  });

  it('a config the node’s own check refuses changes nothing: .failed kept, the validator’s message in status.lastError', async () => {
    writeFileSync(flag(), '');
    const release = activeRelease(h.configDir);
    const worker = (await masterCli(socket()).showProc()).workers.find((w) => w.current)!.pid;
    // A change that does not reload is checked before it is swapped in (a reload is its own check:
    // haproxy keeps its worker when it refuses the files, and the agent puts the release back).
    await expectOk(h.app, 'PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 9 });
    const node = await nodeError(h.app.admin, name, /node-local check failed \(injected by agent\.test\.ts\)/);
    rmSync(flag());
    expect(node.status.lastError).toMatch(/^\[ALERT\]/);
    expect(activeRelease(h.configDir)).toBe(release);
    const failed = failedReleases(h.configDir);
    expect(failed).toHaveLength(1);
    expect(readFileSync(join(`${h.configDir}.releases`, failed[0]!, 'haproxy.cfg'), 'utf8')).toMatch(
      /server m1 127\.0\.4\.11:\d+ .*weight 9/,
    );
    expect((await masterCli(socket()).showProc()).workers.find((w) => w.current)!.pid).toBe(worker);
    expect(await served(H.vip, h.vipPort)).toMatch(/^edge-h-m/);
  });

  it('a reload haproxy refuses (a VIP port taken on the node) is rolled back; the node converges once the cause is gone', async () => {
    const squatter = net.createServer((s) => s.destroy());
    const port = await listen(squatter, H.busy);
    servers.push({ close: () => new Promise((r) => squatter.close(() => r())) });
    const release = activeRelease(h.configDir);
    const before = await masterCli(socket()).showProc();
    await expectOk(h.app, 'POST', '/v1/tenants/t1/vips', {
      name: 'busy',
      address: H.busy,
      port,
      protocol: 'http',
      defaultPool: 'web',
    });
    const node = await nodeError(h.app.admin, name, /haproxy refused the new configuration at reload/);
    expect(node.status.lastError).toMatch(/worker \d+ keeps serving the previous configuration/);
    expect(activeRelease(h.configDir)).toBe(release);
    expect(failedReleases(h.configDir)).toHaveLength(2);
    const after = await masterCli(socket()).showProc();
    expect(after.master.failedReloads).toBe(1);
    expect(after.workers.find((w) => w.current)!.pid).toBe(before.workers.find((w) => w.current)!.pid);
    expect(await served(H.vip, h.vipPort)).toMatch(/^edge-h-m/);

    const removed = await expectOk(h.app, 'DELETE', '/v1/tenants/t1/vips/busy');
    const done = await converged(h.app.admin, name, removed.revision);
    // Back to the running structure: the weight the node's check refused earlier goes in without a reload.
    expect(done.node.status).toMatchObject({ lastError: null, reloadCount: 1 });
    expect(onDisk(h.configDir, 'haproxy.cfg')).toMatch(/server m1 127\.0\.4\.11:\d+ .*weight 9/);
  });

  it('with the control plane down, traffic is untouched; the agent retries and converges when it comes back', async () => {
    const worker = (await masterCli(socket()).showProc()).workers.find((w) => w.current)!.pid;
    const url = new URL(h.app.url);
    await h.app.cp.stop();
    stoppers[0] = () => h.app.database.drop();
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      seen.add(await served(H.vip, h.vipPort));
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(seen.size).toBeGreaterThan(0);
    await eventually('the agent to say the control plane is away', async () =>
      logs.lines().some((l) => l.level === 40 && /control plane unreachable/.test(String(l.msg))) ? true : undefined,
    );

    const config = loadConfig({
      DATABASE_URL: h.app.database.url,
      PORT: url.port,
      HOST: '127.0.0.1',
      SWITCHYARD_ADMIN_TOKEN: h.app.adminToken,
      SWITCHYARD_SECRET_KEY: h.app.secretKey,
      LOG_LEVEL: 'silent',
      SWITCHYARD_TOKEN_CACHE_MS: '0',
    });
    const back: ControlPlane = await startControlPlane(config, createLogger('silent'));
    stoppers[0] = async () => {
      await back.stop();
      await h.app.database.drop();
    };
    const admin = adminAt(back.url, h.app.adminToken);
    const patched = await admin('PATCH', '/v1/tenants/t1/pools/web/members/m2', { weight: 3 });
    expect(patched.status).toBe(200);
    const { node } = await converged(admin, name, patched.body.revision, 20_000);
    expect(node.status.reloadCount).toBe(1);
    expect(onDisk(h.configDir, 'haproxy.cfg')).toMatch(/server m2 127\.0\.4\.12:\d+ .*weight 3/);
    expect((await masterCli(socket()).showProc()).workers.find((w) => w.current)!.pid).toBe(worker);
    expect(logs.lines().some((l) => /control plane reachable again/.test(String(l.msg)))).toBe(true);
  });
});

describe('NGINX node', () => {
  const name = 'edge-n';
  let nginx: ProxyProcess;

  it('applies once before nginx runs, then serves the VIP through nginx', async () => {
    const once = buildAgent(
      parseAgentOptions({ ...flags(n, name, 'nginx'), once: true }, { SWITCHYARD_AGENT_TOKEN: n.token }),
      createLogger('silent'),
    );
    expect(onceExitCode(await once.once())).toBe(0);
    nginx = startNginx(n.configDir);
    proxies.push(nginx);
    await eventually(
      'traffic through nginx',
      async () => ((await served(N.vip, n.vipPort)).startsWith('edge-n-m') ? true : undefined),
      10_000,
    );
    const agent = buildAgent(
      parseAgentOptions(flags(n, name, 'nginx'), { SWITCHYARD_AGENT_TOKEN: n.token }),
      createLogger(process.env.AGENT_TEST_LOGS ? 'debug' : 'silent'),
      FAST_RETRY,
    );
    agents.push(agent);
    void agent.run();
    const { node } = await converged(n.app.admin, name);
    expect(node.status).toMatchObject({ reloadCount: 0, lastError: null });
  });

  it('a change reloads nginx exactly once: same master, all new workers', async () => {
    const workers = await nginxWorkers(nginx.pid);
    expect(workers.length).toBeGreaterThan(0);
    const write = await expectOk(n.app, 'PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 4 });
    const { node } = await converged(n.app.admin, name, write.revision);
    expect(node.status).toMatchObject({ reloadCount: 1, lastError: null });
    const now = await nginxWorkers(nginx.pid);
    expect(now.filter((pid) => workers.includes(pid))).toEqual([]);
    expect(onDisk(n.configDir, 'nginx.pid').trim()).toBe(String(nginx.pid));
    expect(await served(N.vip, n.vipPort)).toMatch(/^edge-n-m/);
  });

  it('a reload nginx refuses (a VIP port taken on the node) is rolled back with nginx’s own message', async () => {
    const squatter = net.createServer((s) => s.destroy());
    const port = await listen(squatter, N.busy);
    servers.push({ close: () => new Promise((r) => squatter.close(() => r())) });
    const release = activeRelease(n.configDir);
    const workers = await nginxWorkers(nginx.pid);
    await expectOk(n.app, 'POST', '/v1/tenants/t1/vips', {
      name: 'busy',
      address: N.busy,
      port,
      protocol: 'http',
      defaultPool: 'web',
    });
    const node = await nodeError(n.app.admin, name, /nginx refused the new configuration at reload/);
    expect(node.status.lastError).toMatch(
      new RegExp(`\\[emerg\\].*bind\\(\\) to ${N.busy.replace(/\./g, '\\.')}:${port} failed`),
    );
    expect(node.status.reloadCount).toBe(1);
    expect(activeRelease(n.configDir)).toBe(release);
    expect(failedReleases(n.configDir)).toHaveLength(1);
    expect(existsSync(join(`${n.configDir}.releases`, failedReleases(n.configDir)[0]!, 'nginx.conf'))).toBe(true);
    expect(await nginxWorkers(nginx.pid)).toEqual(workers);
    expect(await served(N.vip, n.vipPort)).toMatch(/^edge-n-m/);
  });
});
