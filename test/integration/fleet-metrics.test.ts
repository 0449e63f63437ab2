import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
 * Every metric docs/api.md lists has samples once a fleet has run: a control plane as in production
 * (reconciler, stats poller, rebalancer) with one HAProxy and one NGINX node, each with its agent,
 * serving a tenant through a runtime change and a reload. The metric names are read from
 * docs/api.md, so a metric documented but never set fails here. Only 127.0.0.0/8; bounded waits.
 */
const VIP = '127.0.0.85';
const MEMBERS = ['127.0.8.11', '127.0.8.12'];
const CHECK = { type: 'http', path: '/healthz', intervalMs: 300, timeoutMs: 200, rise: 1, fall: 2 };

interface FleetNode {
  readonly name: string;
  readonly kind: 'haproxy' | 'nginx';
  readonly configDir: string;
  readonly socket: string;
  readonly token: string;
  agent?: Agent;
  proxy?: ProxyProcess;
}

let app: TestApp;
let root: string;
let vipPort: number;
const backends: (Closable & { port: number })[] = [];
const nodes: FleetNode[] = [];
const logs = memoryLogger();

/** The metric names in docs/api.md's metrics table (section "Audit, metrics and API documentation"). */
function documentedMetrics(): string[] {
  const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const start = doc.indexOf('## Audit, metrics and API documentation');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  return [...section.matchAll(/^\s*\| `(switchyard_[a-z_]+)` \|/gm)].map((m) => m[1]!);
}

/** Sample lines of one metric family (histograms by their `_count`), as `labels → value`. */
function samples(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && (m[1] === metric || m[1] === `${metric}_count`)) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

function startAgent(n: FleetNode): void {
  n.agent = startFastAgent(app.url, n, logs.logger);
}

const allConverged = (atLeast: number) => Promise.all(nodes.map((n) => converged(app.admin, n.name, atLeast, 30_000)));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-fleet-metrics-'));
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_LEADER_RETRY_MS: '100',
    SWITCHYARD_RECONCILE_INTERVAL_MS: '500',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
    SWITCHYARD_STATS: 'true',
    SWITCHYARD_STATS_INTERVAL_S: '1',
    SWITCHYARD_REBALANCE: 'true',
    SWITCHYARD_REBALANCE_INTERVAL_S: '1',
  });
  vipPort = await freePort(VIP);
  for (const [i, address] of MEMBERS.entries()) backends.push(await httpMember(`m${i + 1}`, address));
  for (const [name, kind] of [
    ['edge-1', 'haproxy'],
    ['edge-2', 'nginx'],
  ] as const) {
    const configDir = join(root, name, 'etc');
    const runtime =
      kind === 'haproxy' ? { runtimeAddress: { host: '127.0.0.1', port: await freePort('127.0.0.1') } } : {};
    const created = await expectOk(app, 'POST', '/v1/nodes', {
      name,
      kind,
      capacity: { vcpu: 4, memoryMb: 8192 },
      configDir,
      socketDir: join(root, name),
      ...runtime,
    });
    nodes.push({ name, kind, configDir, socket: join(root, name, 'master.sock'), token: created.agentToken });
  }
  for (const n of nodes) startAgent(n);
  await allConverged(0);
  for (const n of nodes) n.proxy = n.kind === 'haproxy' ? startHaproxy(n.configDir, n.socket) : startNginx(n.configDir);
  await eventually(
    'edge-1 up',
    async () =>
      (await masterCli(nodes[0]!.socket)
        .showProc()
        .catch(() => null))
        ? true
        : undefined,
    10_000,
  );
}, 120_000);

afterAll(async () => {
  for (const n of nodes) {
    await n.agent?.stop().catch(() => undefined);
    await n.proxy?.stop().catch(() => undefined);
  }
  for (const b of backends) await b.close();
  await app?.stop().catch(() => undefined);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('metrics after a fleet run', () => {
  it('every metric docs/api.md lists has samples, and the node metrics say what the nodes reported', async () => {
    await expectOk(app, 'POST', '/v1/tenants', { id: 't1', reservation: { vcpu: 1, memoryMb: 1024 } });
    await expectOk(app, 'POST', '/v1/tenants/t1/pools', { name: 'web', healthCheck: CHECK });
    await expectOk(app, 'PUT', '/v1/tenants/t1/pools/web/members', {
      members: backends.map((b, i) => ({ name: `m${i + 1}`, address: MEMBERS[i], port: b.port })),
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
      async () => ((await request({ host: VIP, port: vipPort }).catch(() => null))?.status === 200 ? true : undefined),
      15_000,
    );
    for (let i = 0; i < 20; i++) expect((await request({ host: VIP, port: vipPort })).status).toBe(200);
    // A runtime change (Runtime API on HAProxy), then a structural one (a reload on both).
    await expectOk(app, 'PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 42 });
    const reload = await expectOk(app, 'PATCH', '/v1/tenants/t1/pools/web', {
      healthCheck: { ...CHECK, path: '/ready' },
    });
    await allConverged(reload.revision);

    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThanOrEqual(11);
    const scrape = async () => (await app.admin('GET', '/metrics')).body as string;
    // Usage and allocation follow the stats poll and rebalance after the traffic: wait for them, bounded.
    const text = await eventually(
      'every documented metric has samples',
      async () => {
        const body = await scrape();
        return documented.every((m) => samples(body, m).size > 0) ? body : undefined;
      },
      20_000,
      250,
    ).catch(async () => {
      const body = await scrape();
      throw new Error(`metrics without samples: ${documented.filter((m) => samples(body, m).size === 0).join(', ')}`);
    });

    const reloads = samples(text, 'switchyard_node_reloads');
    for (const n of nodes) {
      const reported = (await app.admin('GET', `/v1/nodes/${n.name}`)).body.status.reloadCount;
      expect(reported, n.name).toBeGreaterThanOrEqual(1);
      expect(reloads.get(`{node="${n.name}"}`), n.name).toBe(reported);
    }
    const states = samples(text, 'switchyard_nodes');
    expect(states.get('{state="converged"}')! + states.get('{state="behind"}')!).toBe(2);
    const commands = samples(text, 'switchyard_runtime_commands_total');
    expect(commands.get('{node="edge-1",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(commands.has('{node="edge-1",outcome="error"}')).toBe(true);
    expect(samples(text, 'switchyard_tenant_allocation').get('{tenant="t1",resource="connections"}')).toBeGreaterThan(
      0,
    );
    expect(samples(text, 'switchyard_leader').get('')).toBe(1);
  }, 120_000);
});
