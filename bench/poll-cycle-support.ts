/**
 * The poll-cycle section of `npm run bench:alloc`: `nodes` real HAProxy 2.6 processes on loopback,
 * each running the config the project renders for `tenantsPerNode` tenants (1 HTTP VIP, 1 pool
 * with an HTTP check, 3 members each; every tenant on 2 nodes), registered as nodes in a scratch
 * PostgreSQL database, then the real StatsPoller's `poll()` timed: one cold cycle (no previous
 * read, so no rates and every rollup row new), then `cycles` more (median and max). Figures:
 * - `poll_node_read_ms`: each node's `show stat` as the poller saw it inside a cycle (median, max);
 *   `poll_node_read_alone_ms`: the same read with nothing else in flight; `poll_fleet_read_ms`: all
 *   nodes read at once and nothing else, the floor of a cycle's read phase on this machine;
 * - `poll_reads_done_ms`: when the last read of a cycle returned; the rest of `poll_cycle_ms` is
 *   parsing, storing (samples and rollups) and retention; `poll_cycle_cpu_ms`: this process's CPU;
 * - `poll_samples_stored`: rows in stat_samples after every cycle, checked against what the poller
 *   reported (`poll_ok`: every node read in every cycle and every sample stored).
 * Only the processes started here are stopped, by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { openDatabase, type DatabaseHandle } from '../src/db/connect.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { insertNode } from '../src/db/node-repository.js';
import type { NodeSnapshot, TenantSnapshot } from '../src/domain/snapshot.js';
import { showStatOfTypes } from '../src/fleet/runtime-api/commands/stat-commands.js';
import { RuntimeClientPool } from '../src/fleet/runtime-api/runtime-client-pool.js';
import { RuntimeClientTls } from '../src/fleet/runtime-api/connection/runtime-client-tls.js';
import { CONTROL_PLANE_SUBJECT, nodeSubject } from '../src/domain/runtime-tls.js';
import { createCa, issue } from '../src/pki/openssl-ca.js';
import type { RuntimeExecutor } from '../src/fleet/runtime-api/runtime-executor.js';
import { StatsPoller } from '../src/jobs/stats-poller.js';
import { Metrics } from '../src/metrics.js';
import { renderHaproxy } from '../src/render/haproxy.js';
import {
  freePort,
  runtimeCommand,
  startHaproxy,
  type RunningHaproxy,
} from '../test/integration/haproxy-render-support.js';
import { scratchDatabase } from './support.js';

export interface PollCycleOptions {
  readonly nodes: number;
  readonly tenantsPerNode: number;
  /** Measured cycles, after one cold cycle (no previous read: no rates, every rollup row new). */
  readonly cycles: number;
  readonly log: (message: string) => void;
}

type Figures = Record<string, number | string | boolean>;

const HOST = '127.0.0.1';
const STAMP = { revision: 1, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };
// 30,000 checked servers share 2 cores with everything else: a long interval keeps the checks
// (spread over it by HAProxy) at ~500/s, background noise rather than the thing measured.
const CHECK_INTERVAL_MS = 60_000;
const STAT_COMMAND = showStatOfTypes(['frontend', 'backend', 'server']);

/** Tenant `t` as node `node` serves it: VIP addresses differ per node so 20 processes can share loopback. */
function tenant(t: number, node: number, local: number, vipPort: number, memberPort: number): TenantSnapshot {
  const id = `tenant-${String(t).padStart(5, '0')}`;
  return {
    id,
    vips: [
      {
        name: 'web',
        address: `127.${node + 1}.${local >> 8}.${local & 0xff}`,
        addressPool: null,
        port: vipPort,
        protocol: 'http',
        hostnames: [`${id}.example.com`],
        certificate: null,
        persistence: 'none',
        cookieName: 'SRVID',
        timeouts: { clientMs: 30_000, serverMs: 30_000, connectMs: 5000 },
        allowlist: [],
        defaultPool: 'app',
        routes: [],
        ...STAMP,
      },
    ],
    pools: [
      {
        name: 'app',
        algorithm: 'roundrobin',
        tls: null,
        ...STAMP,
        healthCheck: {
          type: 'http',
          path: '/healthz',
          expectedStatus: '200',
          host: null,
          port: null,
          intervalMs: CHECK_INTERVAL_MS,
          timeoutMs: 1000,
          rise: 2,
          fall: 3,
        },
        members: [1, 2, 3].map((m) => ({
          name: `m${m}`,
          pool: 'app',
          address: HOST,
          port: memberPort,
          weight: 100,
          state: 'enabled' as const,
          backup: false,
          ...STAMP,
        })),
      },
    ],
    certificates: [],
    allocation: { maxConnections: 200, requestsPerSecond: 100 },
  };
}

/** The health-check target, in a process of its own so its work does not share the poller's event loop. */
async function startMember(): Promise<{ child: ChildProcess; port: number }> {
  const script = `
    const s = require('node:http').createServer((q, r) => r.writeHead(q.url === '/healthz' ? 200 : 404, { connection: 'close' }).end());
    s.listen(0, '${HOST}', () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`member exited with ${code}`)));
  });
  return { child, port };
}

async function waitForRuntimeApi(adminSocket: string, haproxy: RunningHaproxy, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (/^Pid: \d+$/m.test(await runtimeCommand(adminSocket, 'show info', 1000).catch(() => ''))) return;
    if (Date.now() > deadline)
      throw new Error(`haproxy with admin socket ${adminSocket} did not start: ${haproxy.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round = (ms: number): number => Math.round(ms * 100) / 100;

export async function pollCycle(options: PollCycleOptions): Promise<Figures> {
  const { nodes, tenantsPerNode, cycles, log } = options;
  if (nodes < 2 || tenantsPerNode % 2 !== 0)
    throw new Error('needs 2+ nodes and an even tenant count per node: every tenant is on 2 nodes');
  const stats = loadConfig({}).stats; // the production defaults: per-node timeout, retention
  const scratch = await scratchDatabase(`sy_bench_alloc_${process.pid}`);
  const dirs: string[] = [];
  const running: RunningHaproxy[] = [];
  let member: ChildProcess | undefined;
  let database: DatabaseHandle | undefined;
  // Read over mutual TLS, as the control plane reads nodes: one CA, one certificate for the loopback address.
  const ca = await createCa('bench Runtime API CA', 1);
  const nodeIdentity = await issue(
    ca,
    nodeSubject({ name: 'bench', runtimeAddress: { host: HOST }, masterAddress: null }),
    1,
  );
  const client = await issue(ca, CONTROL_PLANE_SUBJECT, 1);
  const runtimeTls = {
    certificatePem: nodeIdentity.certificatePem,
    keyPem: nodeIdentity.keyPem,
    caBundlePem: ca.certificatePem,
  };
  const tls = new RuntimeClientTls();
  tls.update({
    certificatePem: client.certificatePem,
    keyPem: client.keyPem,
    caBundlePem: ca.certificatePem,
    serial: 'bench',
  });
  const pool = new RuntimeClientPool({ batchTimeoutMs: 10_000, backoff: { maxMs: 10_000 }, tls });
  // Interrupted (Ctrl-C): the finally below would not run, so the processes started here go first.
  const interrupted = () => {
    const pids = [...running.map((h) => h.pid), ...(member?.pid === undefined ? [] : [member.pid])];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    database = await openDatabase({ url: scratch.url, dataDir: '/nonexistent' });
    const db = database.db;
    await migrateToLatest(db);
    const started = await startMember();
    member = started.child;
    const vipPort = await freePort(HOST);

    log(`rendering and starting ${nodes} HAProxy processes, ${tenantsPerNode} tenants each`);
    const half = tenantsPerNode / 2;
    let configBytes = 0;
    const startAt = performance.now();
    const endpoints: { name: string; port: number; haproxy: RunningHaproxy; adminSocket: string }[] = [];
    for (let i = 0; i < nodes; i++) {
      const name = `edge-${String(i).padStart(2, '0')}`;
      const dir = await mkdtemp(join(tmpdir(), `sy-bench-${name}-`));
      dirs.push(dir);
      const port = await freePort(HOST);
      // Node i serves tenant blocks i and i+1: each tenant on 2 nodes, as placement puts it.
      const ids = [
        ...Array.from({ length: half }, (_, k) => i * half + k),
        ...Array.from({ length: half }, (_, k) => ((i + 1) % nodes) * half + k),
      ];
      const snapshot: NodeSnapshot = {
        revision: 1,
        node: {
          name,
          kind: 'haproxy',
          runtimeAddress: { host: HOST, port },
          capacity: { vcpu: 32, memoryMb: 65_536 },
          configDir: dir,
          socketDir: dir,
          runtimeTls,
        },
        tenants: ids.sort((a, b) => a - b).map((t, local) => tenant(t, i, local, vipPort, started.port)),
      };
      const files = renderHaproxy(snapshot);
      configBytes += files['haproxy.cfg']!.length;
      for (const [file, content] of Object.entries({ ...files, 'state/server-state': '1\n' })) {
        await mkdir(dirname(join(dir, file)), { recursive: true });
        await writeFile(join(dir, file), content);
      }
      await insertNode(
        db,
        {
          name,
          kind: 'haproxy',
          group: 'default',
          zone: `zone-${i % 3}`,
          runtimeAddress: { host: HOST, port },
          capacity: snapshot.node.capacity,
          configDir: dir,
          socketDir: dir,
        },
        1,
      );
      const haproxy = startHaproxy(join(dir, 'haproxy.cfg'));
      running.push(haproxy);
      endpoints.push({ name, port, haproxy, adminSocket: join(dir, 'admin.sock') });
    }
    for (const [i, e] of endpoints.entries()) {
      await waitForRuntimeApi(e.adminSocket, e.haproxy, 60_000);
      if ((i + 1) % 5 === 0) log(`${i + 1}/${nodes} HAProxy processes answer on their Runtime API`);
    }
    const startMs = performance.now() - startAt;

    // The poller as main.ts builds it, its Runtime API port wrapped to time each node's read.
    let reads: number[] = [];
    let readsEnd = 0;
    const clients = {
      client(node: string, endpoint: { readonly host: string; readonly port: number }): RuntimeExecutor {
        const inner = pool.client(node, endpoint);
        return {
          async execute(commands, opts) {
            const t0 = performance.now();
            const replies = await inner.execute(commands, opts);
            const t1 = performance.now();
            reads.push(t1 - t0);
            readsEnd = Math.max(readsEnd, t1);
            return replies;
          },
        };
      },
    };
    const logger = pino({ level: 'warn', base: { service: 'switchyard-bench' } }, pino.destination(2));
    const poller = new StatsPoller({ db, clients, logger, metrics: new Metrics() }, stats);

    const cycle = async () => {
      reads = [];
      readsEnd = 0;
      const cpuStart = process.cpuUsage();
      const t0 = performance.now();
      const result = await poller.poll();
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpuStart);
      const ok = result.nodes.filter((n) => n.ok).length;
      if (ok !== nodes)
        log(`cycle: ${nodes - ok} node(s) failed: ${JSON.stringify(result.nodes.filter((n) => !n.ok))}`);
      const samples = result.nodes.reduce((s, n) => s + (n.ok ? n.samples : 0), 0);
      return {
        wallMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        readsDoneMs: readsEnd - t0,
        ok,
        samples,
        reads: [...reads],
      };
    };

    log('cold poll cycle');
    const cold = await cycle();
    log(`${cycles} poll cycles`);
    const measured = [];
    for (let i = 0; i < cycles; i++) measured.push(await cycle());

    // Each node read on its own, nothing else in flight: what a read costs without the fleet's contention.
    const read = (e: (typeof endpoints)[number]) =>
      pool.client(e.name, { host: HOST, port: e.port }).execute([STAT_COMMAND], { timeoutMs: stats.nodeTimeoutMs });
    const alone: number[] = [];
    const bytes: number[] = [];
    for (const e of endpoints) {
      const t0 = performance.now();
      const [reply] = await read(e);
      alone.push(performance.now() - t0);
      bytes.push(reply?.status === 'ok' ? Buffer.byteLength(reply.output) : 0);
    }
    // Every node read at once with nothing else to do: the floor of a cycle's read phase on this machine.
    const fleetReads: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await Promise.all(endpoints.map(read));
      fleetReads.push(performance.now() - t0);
    }

    const { rows } = await sql<{ n: number }>`select count(*)::int as n from stat_samples`.execute(db);
    const stored = rows[0]!.n;
    const expected = [cold, ...measured].reduce((s, c) => s + c.samples, 0);
    const allReads = measured.flatMap((c) => c.reads);
    const wall = measured.map((c) => c.wallMs);
    return {
      poll_nodes: nodes,
      poll_tenants_per_node: tenantsPerNode,
      poll_tenants: (nodes * tenantsPerNode) / 2,
      poll_check_interval_ms: CHECK_INTERVAL_MS,
      poll_config_kb_per_node: Math.round(configBytes / nodes / 1024),
      poll_haproxy_start_ms: Math.round(startMs),
      poll_node_timeout_ms: stats.nodeTimeoutMs,
      poll_cycles: cycles,
      poll_cold_ms: round(cold.wallMs),
      poll_cycle_ms: round(median(wall)),
      poll_cycle_max_ms: round(Math.max(...wall)),
      poll_cycle_cpu_ms: round(median(measured.map((c) => c.cpuMs))),
      poll_reads_done_ms: round(median(measured.map((c) => c.readsDoneMs))),
      poll_node_read_ms: round(median(allReads)),
      poll_node_read_max_ms: round(Math.max(...allReads)),
      poll_node_read_alone_ms: round(median(alone)),
      poll_node_read_alone_max_ms: round(Math.max(...alone)),
      poll_fleet_read_ms: round(median(fleetReads)),
      poll_stat_kb_per_node: Math.round(median(bytes) / 1024),
      poll_samples_per_cycle: measured[0]?.samples ?? 0,
      poll_samples_stored: stored,
      poll_node_failures: [cold, ...measured].reduce((s, c) => s + nodes - c.ok, 0),
      poll_ok: [cold, ...measured].every((c) => c.ok === nodes) && stored === expected,
    };
  } finally {
    process.off('SIGINT', interrupted);
    await pool.close();
    for (const haproxy of running) await haproxy.stop().catch(() => undefined);
    if (member !== undefined && member.exitCode === null && member.pid !== undefined) member.kill('SIGTERM');
    await database?.close();
    await scratch.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }
}
