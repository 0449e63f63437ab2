import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentFlags } from '../../src/cli/agent.js';
import type { Agent } from '../../src/fleet/agent/agent.js';
import { parseShowStat } from '../../src/fleet/replies/show-stat.js';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  activeRelease,
  converged,
  expectOk,
  flakyHaproxy,
  masterCli,
  memoryLogger,
  nodeError,
  startFastAgent,
  startHaproxy,
  startNginx,
  type ProxyProcess,
} from './agent-support.js';
import { eventually, freePort, httpMember, runtimeCommand, type Closable } from './haproxy-render-support.js';

/**
 * The fleet end to end on loopback: the control plane with its reconciler on real PostgreSQL, two
 * HAProxy nodes and one NGINX node, each with its agent, all serving the same VIP address:port
 * (SO_REUSEPORT: the kernel spreads new connections over the three, as ECMP would over hosts).
 * Only 127.0.0.0/8; every wait is bounded; only processes started here are stopped, by PID.
 */
const VIP = '127.0.0.81';
const MEMBERS = ['127.0.6.11', '127.0.6.12', '127.0.6.13'];
const CHECK = { type: 'http', path: '/healthz', intervalMs: 300, timeoutMs: 200, rise: 1, fall: 2 };

interface FleetNode {
  readonly name: string;
  readonly kind: 'haproxy' | 'nginx';
  readonly configDir: string;
  readonly socket: string;
  /** The local admin socket in the node's socketDir (the control plane reaches it through the mTLS listener). */
  readonly adminSocket: string;
  readonly statsPort: number | null;
  token: string;
  agent?: Agent;
  proxy?: ProxyProcess;
}

let app: TestApp;
let root: string;
let vipPort: number;
const backends: (Closable & { port: number })[] = [];
const nodes: FleetNode[] = [];
const logs = memoryLogger();

const haproxyNodes = () => nodes.filter((n) => n.kind === 'haproxy');
const node = (name: string) => nodes.find((n) => n.name === name)!;

function startAgent(n: FleetNode, extra: Partial<AgentFlags> = {}): void {
  n.agent = startFastAgent(app.url, n, logs.logger, extra);
}

function startProxy(n: FleetNode): void {
  n.proxy = n.kind === 'haproxy' ? startHaproxy(n.configDir, n.socket) : startNginx(n.configDir);
}

async function stopNode(n: FleetNode): Promise<void> {
  await n.agent?.stop();
  await n.proxy?.stop();
  n.agent = undefined;
  n.proxy = undefined;
}

/** One request on a fresh connection, so the kernel picks a node for it. */
function get(path = '/'): Promise<{ status: number; server: string | undefined; member: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: VIP, port: vipPort, path, agent: false, headers: { connection: 'close' }, timeout: 3000 },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            server: res.headers.server as string | undefined,
            member: res.headers['x-member'] as string | undefined,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function frontendSessions(n: FleetNode): Promise<number> {
  const rows = parseShowStat(await runtimeCommand(n.adminSocket, 'show stat', 2000));
  return rows.find((r) => r.pxname === 'fe_t1_www' && r.type === 'frontend')?.stot ?? 0;
}

async function weightOn(n: FleetNode, server: string): Promise<number | undefined> {
  const text = await runtimeCommand(n.adminSocket, 'show servers state be_t1_web', 2000);
  const line = text.split('\n').find((l) => l.split(' ')[3] === server);
  return line === undefined ? undefined : Number(line.split(' ')[7]);
}

async function allConverged(atLeast: number, names = nodes.map((n) => n.name)): Promise<void> {
  await Promise.all(names.map((name) => converged(app.admin, name, atLeast, 30_000)));
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-fleet-'));
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_LEADER_RETRY_MS: '100',
    SWITCHYARD_RECONCILE_INTERVAL_MS: '500',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
  });
  vipPort = await freePort(VIP);
  for (const [i, address] of MEMBERS.entries()) backends.push(await httpMember(`m${i + 1}`, address));
  for (const [name, kind] of [
    ['edge-1', 'haproxy'],
    ['edge-2', 'haproxy'],
    ['edge-3', 'nginx'],
  ] as const) {
    const statsPort = kind === 'haproxy' ? await freePort('127.0.0.1') : null;
    const configDir = join(root, name, 'etc');
    const created = await expectOk(app, 'POST', '/v1/nodes', {
      name,
      kind,
      capacity: { vcpu: 4, memoryMb: 8192 },
      configDir,
      socketDir: join(root, name),
      ...(statsPort !== null && { runtimeAddress: { host: '127.0.0.1', port: statsPort } }),
    });
    nodes.push({
      name,
      kind,
      configDir,
      socket: join(root, name, 'master.sock'),
      adminSocket: join(root, name, 'admin.sock'),
      statsPort,
      token: created.agentToken,
    });
  }
  // Agents first (they write the files), then the proxies on those files: the launch order docs/operating-nodes.md gives.
  for (const n of nodes) startAgent(n);
  await allConverged(0);
  for (const n of nodes) startProxy(n);
  for (const n of haproxyNodes())
    await eventually(
      `${n.name} up`,
      async () =>
        (await masterCli(n.socket)
          .showProc()
          .catch(() => null))
          ? true
          : undefined,
      10_000,
    );
}, 120_000);

afterAll(async () => {
  for (const n of nodes) await stopNode(n).catch(() => undefined);
  for (const b of backends) await b.close();
  await app?.stop().catch(() => undefined);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a fleet of two HAProxy nodes and one NGINX node', () => {
  it('serves a new tenant’s VIP through all three nodes', async () => {
    // A reservation: the rate limit and connection cap follow it (a tenant reserving nothing gets 1 request/s).
    await expectOk(app, 'POST', '/v1/tenants', { id: 't1', reservation: { vcpu: 1, memoryMb: 1024 } });
    await expectOk(app, 'POST', '/v1/tenants/t1/pools', { name: 'web', healthCheck: CHECK });
    await expectOk(app, 'PUT', '/v1/tenants/t1/pools/web/members', {
      members: backends.slice(0, 2).map((b, i) => ({ name: `m${i + 1}`, address: MEMBERS[i], port: b.port })),
    });
    const vip = await expectOk(app, 'POST', '/v1/tenants/t1/vips', {
      name: 'www',
      address: VIP,
      port: vipPort,
      protocol: 'http',
      defaultPool: 'web',
    });
    await allConverged(vip.revision);
    await eventually(
      'the VIP answers',
      async () => ((await get().catch(() => null))?.status === 200 ? true : undefined),
      15_000,
    );

    const answers = [];
    for (let i = 0; i < 90; i++) answers.push(await get());
    expect(answers.every((a) => a.status === 200 && a.member?.startsWith('m'))).toBe(true);
    // NGINX names itself in Server; HAProxy passes the member's (none). Each HAProxy counts its own sessions.
    expect(answers.filter((a) => a.server?.startsWith('nginx')).length).toBeGreaterThan(0);
    for (const n of haproxyNodes()) expect(await frontendSessions(n), n.name).toBeGreaterThan(0);
  });

  it('a weight change and a member add go live through the Runtime API, with no reload', async () => {
    const before = await Promise.all(haproxyNodes().map((n) => masterCli(n.socket).showProc()));
    await expectOk(app, 'PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 42 });
    await expectOk(app, 'POST', '/v1/tenants/t1/pools/web/members', {
      name: 'm3',
      address: MEMBERS[2],
      port: backends[2]!.port,
      weight: 7,
    });
    for (const n of haproxyNodes()) {
      await eventually(
        `${n.name}: weight and new member live`,
        async () => ((await weightOn(n, 'm1')) === 42 && (await weightOn(n, 'm3')) === 7 ? true : undefined),
        10_000,
        50,
      );
    }
    const after = await Promise.all(haproxyNodes().map((n) => masterCli(n.socket).showProc()));
    haproxyNodes().forEach((n, i) => {
      const was = before[i]!.workers.find((w) => w.current)!;
      const now = after[i]!.workers.find((w) => w.current)!;
      expect(now.pid, n.name).toBe(was.pid);
      expect(now.uptimeSec, n.name).toBeGreaterThanOrEqual(was.uptimeSec);
      expect(after[i]!.master.reloads, n.name).toBe(before[i]!.master.reloads);
    });
    await eventually(
      'm3 serves traffic',
      async () => {
        for (let i = 0; i < 30; i++) if ((await get()).member === 'm3') return true;
        return undefined;
      },
      15_000,
    );
  });

  it('a health-check path change causes exactly one reload per HAProxy node', async () => {
    const before = await Promise.all(haproxyNodes().map((n) => masterCli(n.socket).showProc()));
    const write = await expectOk(app, 'PATCH', '/v1/tenants/t1/pools/web', {
      healthCheck: { ...CHECK, path: '/ready' },
    });
    await allConverged(write.revision);
    await new Promise((r) => setTimeout(r, 1500)); // time for any stray second reload to show
    const after = await Promise.all(haproxyNodes().map((n) => masterCli(n.socket).showProc()));
    haproxyNodes().forEach((n, i) => {
      expect(after[i]!.master.reloads, n.name).toBe(before[i]!.master.reloads + 1);
    });
    const statuses = await Promise.all(
      haproxyNodes().map(async (n) => (await app.admin('GET', `/v1/nodes/${n.name}`)).body.status.reloadCount),
    );
    expect(statuses.every((c) => c >= 1)).toBe(true);
  });

  it('a node stopped during a change does not hold up the others, and converges when it returns', async () => {
    const edge2 = node('edge-2');
    await stopNode(edge2);
    const write = await expectOk(app, 'PATCH', '/v1/tenants/t1/vips/www', { timeouts: { clientMs: 31_000 } });
    await allConverged(write.revision, ['edge-1', 'edge-3']);
    const stale = await app.admin('GET', '/v1/tenants/t1/status');
    expect(stale.body.nodes.find((n: any) => n.node === 'edge-2').converged).toBe(false);
    startAgent(edge2);
    await converged(app.admin, 'edge-2', write.revision, 30_000);
    startProxy(edge2);
    await eventually(
      'edge-2 serving again',
      async () =>
        (await masterCli(edge2.socket)
          .showProc()
          .catch(() => null))
          ? true
          : undefined,
      10_000,
    );
    await eventually(
      'edge-2 runtime state current',
      async () => ((await weightOn(edge2, 'm1').catch(() => undefined)) === 42 ? true : undefined),
      15_000,
      100,
    );
    const status = await eventually(
      'the tenant converged everywhere',
      async () => {
        const body = (await app.admin('GET', '/v1/tenants/t1/status')).body;
        return body.converged ? body : undefined;
      },
      15_000,
    );
    expect(status.nodes.map((n: any) => n.node).sort()).toEqual(['edge-1', 'edge-2', 'edge-3']);
  });

  it('a HAProxy node whose proxy dies is not converged in the tenant’s status, with the Runtime API error as the reason, until it is back', async () => {
    const edge1 = node('edge-1');
    await edge1.proxy!.stop();
    edge1.proxy = undefined;
    // Its agent still heartbeats and still reports the latest config applied: only the Runtime API tells.
    const down = await eventually(
      'edge-1 not converged',
      async () => {
        const body = (await app.admin('GET', '/v1/tenants/t1/status')).body;
        const entry = body.nodes.find((n: any) => n.node === 'edge-1');
        return entry?.cause === 'runtime_api_failing' ? { body, entry } : undefined;
      },
      15_000,
    );
    expect(down.body.converged).toBe(false);
    expect(down.entry).toMatchObject({ converged: false, waitingFor: expect.stringContaining('Runtime API') });
    startProxy(edge1);
    await eventually(
      'the tenant converged again',
      async () => ((await app.admin('GET', '/v1/tenants/t1/status')).body.converged ? true : undefined),
      20_000,
    );
  });

  it('a config the proxy rejects on a node leaves it serving its previous config, with the validator’s message in its status', async () => {
    const edge1 = node('edge-1');
    await edge1.agent!.stop();
    const flag = join(root, 'edge-1', 'refuse');
    writeFileSync(flag, '');
    startAgent(edge1, { haproxyBin: flakyHaproxy(join(root, 'edge-1'), flag) });
    const release = activeRelease(edge1.configDir);
    const workerBefore = (await masterCli(edge1.socket).showProc()).workers.find((w) => w.current)!.pid;
    // A change that does not reload is checked before it goes in (a reload is its own check).
    await expectOk(app, 'PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 17 });
    const status = await nodeError(app.admin, 'edge-1', /node-local check failed/i, 20_000);
    expect(status.status.lastError).toBeTruthy();
    expect(activeRelease(edge1.configDir)).toBe(release);
    expect((await masterCli(edge1.socket).showProc()).workers.find((w) => w.current)!.pid).toBe(workerBefore);
    const answers = await Promise.all(Array.from({ length: 20 }, () => get()));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    unlinkSync(flag);
    await converged(app.admin, 'edge-1', 0, 30_000);
    expect(existsSync(flag)).toBe(false);
  });

  it('the control plane going down leaves traffic untouched', async () => {
    await app.stop();
    const started = Date.now();
    let ok = 0;
    while (Date.now() - started < 3000) {
      const a = await get();
      expect(a.status).toBe(200);
      ok++;
    }
    expect(ok).toBeGreaterThan(20);
    expect(logs.lines().some((l) => /control plane/i.test(String(l.msg)))).toBe(true);
  });
});
