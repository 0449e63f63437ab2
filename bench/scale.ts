/**
 * bench:scale — the whole control loop at scale, end to end, on real processes.
 *
 * A control plane of its own (a child process, `npm start`'s command line, on a scratch
 * PostgreSQL database; stats poller and rebalancer off), 3 nodes registered through the API (2
 * HAProxy with a Runtime API, 1 NGINX), each with its agent as a child process
 * (`switchyard agent`) and its real proxy on the files the agent wrote. Then:
 *  - BENCH_TENANTS tenants (default 10,000) created through the REST API by 8 concurrent clients,
 *    4 writes each (tenant with a small reservation, pool `web`, its 2 members in one PUT, an HTTP
 *    VIP `www` on an address of its own, one port for all); writes/s and time per write in windows
 *    of BENCH_STEP tenants (default 1,000): the last window against the first;
 *  - every agent's lag behind the desired revision during the stream, sampled every 500 ms, and
 *    where its applies' time went (their count, reloads, and the p50/p99 of staging, validation,
 *    reload and the whole apply, from the agent's own log lines), and the agents' config fetches
 *    and reports as the control plane timed them;
 *  - after the last write: time until every node converged, and the last tenant's VIP answering
 *    200 through the proxies (each node told apart: HAProxy by its frontend's session count,
 *    NGINX by its Server header);
 *  - at full scale, 20 one-member weight changes: write returned → weight live on every HAProxy
 *    node (Runtime API `get weight`), and the config build time for each (the control plane's
 *    build-duration histogram, delta of sum/count);
 *  - the control plane's RSS at the end and its peak (VmHWM).
 * Prints one JSON line on stdout (progress on stderr). Targets: throughput last/first ≥ 0.8; agent
 * lag p99 ≤ 5 s; converged ≤ 5 s after the last write; the last VIP served; member change p99 ≤ 100
 * ms; build p99 ≤ 50 ms; RSS ≤ 300 MB. Missed targets are reported (exit 0, `met: false`);
 * something broken (a write refused, nothing converging within BENCH_CONVERGE_TIMEOUT_S) fails.
 * Knobs: BENCH_TENANTS, BENCH_STEP, BENCH_CLIENTS (8), BENCH_CHANGES (20), BENCH_AGENT_WAIT_S (the
 * agents' --wait, 10), BENCH_CONVERGE_TIMEOUT_S (900), BENCH_CP_NODE_ARGS (extra node flags for the
 * control plane, e.g. `--cpu-prof --cpu-prof-dir=DIR`), BENCH_KEEP_DB=1 (keep the scratch database and
 * print, on stderr, the environment that starts a control plane on it: to profile one at scale
 * without creating the tenants again). BENCH_FLEET=none registers the same nodes
 * but runs no agent and no proxy: the control plane alone (writes, placement, builds, storage),
 * as the issue measured it "with no proxies running", to tell its cost from the proxies' reloads
 * on the same machine; lag, convergence and the VIP check are then left out (null), and a member
 * change is timed from the write to the new build being stored for every HAProxy node.
 * Only 127.0.0.0/8; every wait is bounded; only processes started here are stopped, by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, httpMember, runtimeCommand, type Closable } from '../test/integration/haproxy-render-support.js';
import { npmStartCommand } from './start-command.js';
import { REPO, round, scratchDatabase } from './support.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 10_000);
const STEP = Number(process.env.BENCH_STEP ?? 1_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 20);
/** How long the fleet may take to converge before the bench calls it broken. */
const CONVERGE_TIMEOUT_MS = Number(process.env.BENCH_CONVERGE_TIMEOUT_S ?? 900) * 1000;
/** The agents' long-poll wait (`--wait`); the default agent's is 30. */
const AGENT_WAIT_S = Number(process.env.BENCH_AGENT_WAIT_S ?? 10);
/** `none`: no agents and no proxies (see above). */
const FLEET = process.env.BENCH_FLEET === 'none' ? 'none' : 'full';
/** Extra node flags for the control plane, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where its time goes. */
const KEEP_DB = process.env.BENCH_KEEP_DB === '1';
/** With BENCH_KEEP_DB: the control plane's environment on the kept database, printed at the end. */
let keptEnvironment = '';
/** How `npm start` runs the control plane: its environment, node's flags, the script. */
const START = npmStartCommand();
const CP_NODE_ARGS = (process.env.BENCH_CP_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const SAMPLE_MS = 500;
const PROGRESS_EVERY = 250;
/** Small, so caps are not 1 request/s: 100 req/s and 156 connections per tenant. */
const RESERVATION = { vcpu: 0.01, memoryMb: 16 };
const MEMBER_HOSTS = ['127.0.7.1', '127.0.7.2', '127.0.7.3', '127.0.7.4'];

if (!Number.isInteger(TENANTS) || TENANTS < 1 || !Number.isInteger(STEP) || STEP < 1 || STEP > TENANTS) {
  throw new Error(
    `BENCH_TENANTS (${TENANTS}) and BENCH_STEP (${STEP}) must be whole numbers with 1 <= STEP <= TENANTS`,
  );
}
if (TENANTS > 250 * 250 * 60) throw new Error('BENCH_TENANTS is above what the 127.64.0.0/10 VIP addresses hold');

const log = (msg: string) => process.stderr.write(`bench:scale: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: readonly number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const num = (n: number, digits = 2) => (Number.isFinite(n) ? round(n, digits) : null);
const tenantId = (i: number) => `t${i}`;
/** A loopback address of its own per tenant, never .0 or .255 in any octet. */
const vipAddress = (i: number) =>
  `127.${64 + Math.floor(i / 62_500)}.${1 + (Math.floor(i / 250) % 250)}.${1 + (i % 250)}`;

// ---------------------------------------------------------------------------------------------
// Child processes: started here, stopped here, by PID only.

interface Child {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last lines it printed, for error messages. */
  readonly tail: string[];
  exited: boolean;
  exitCode: number | null;
  exitSignal: string | null;
}

const children: Child[] = [];
let stopping = false;
/** Set once every node converged with its proxy running. */
let fleetUp = false;
const FORWARDED_LINES_MAX = 100;
/**
 * What the proxies print on every start or reload here and what does not matter to the bench: the
 * FD limit below a large node's maxconn (rendered with `no strict-limits`), no syslog at /dev/log,
 * a backend that has no server between a pool's creation and its members', a reload's old worker.
 */
const BENIGN_PROXY_LINES = /FD limit .* too low|failed in logger|has no server available|exited with code 143/;

function track(name: string, child: ChildProcess, forward: (line: string) => boolean): Child {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  const c: Child = { name, child, pid: child.pid, tail: [], exited: false, exitCode: null, exitSignal: null };
  let forwarded = 0;
  const onData = (buffered: { text: string }) => (chunk: Buffer) => {
    buffered.text += chunk.toString();
    const lines = buffered.text.split('\n');
    buffered.text = lines.pop()!;
    for (const line of lines) {
      if (line === '') continue;
      c.tail.push(line.slice(0, 2000));
      if (c.tail.length > 30) c.tail.shift();
      if (!stopping && forward(line)) {
        if (forwarded < FORWARDED_LINES_MAX) process.stderr.write(`[${name}] ${line.slice(0, 500)}\n`);
        else if (forwarded === FORWARDED_LINES_MAX) process.stderr.write(`[${name}] (further lines not shown)\n`);
        forwarded++;
      }
    }
  };
  child.stdout?.on('data', onData({ text: '' }));
  child.stderr?.on('data', onData({ text: '' }));
  child.once('exit', (code, signal) => {
    c.exited = true;
    c.exitCode = code;
    c.exitSignal = signal;
    if (!stopping) log(`${name} (pid ${c.pid}) exited unexpectedly: code ${code}, signal ${signal}`);
  });
  children.push(c);
  return c;
}

/** Throws if any child died while the bench still needs it. */
function checkAlive(): void {
  if (stopping) throw new Error('interrupted');
  const dead = children.find((c) => c.exited);
  if (dead) {
    throw new Error(
      `${dead.name} (pid ${dead.pid}) exited (code ${dead.exitCode}, signal ${dead.exitSignal}); its last lines:\n${dead.tail.join('\n')}`,
    );
  }
}

async function stopChild(c: Child, timeoutMs = 10_000): Promise<void> {
  if (c.exited) return;
  const exited = new Promise<void>((resolve) => {
    if (c.exited) resolve();
    else c.child.once('exit', () => resolve());
  });
  try {
    process.kill(c.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }, timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** pino JSON lines at warn (40) or above, and anything that is not JSON (a crash). */
function isWarning(line: string): boolean {
  try {
    const level = (JSON.parse(line) as { level?: unknown }).level;
    return typeof level !== 'number' || level >= 40;
  } catch {
    return true;
  }
}

/** Per node: each apply's timings as its agent logged them ('applied and reloaded' / 'applied without a reload'). */
const applies = new Map<string, { reloaded: boolean; ms: Record<string, number> }[]>();

/** Records an agent's apply line; forwards its warnings. */
function agentLine(node: string): (line: string) => boolean {
  return (line) => {
    if (line.includes('"msg":"applied')) {
      try {
        const entry = JSON.parse(line) as { msg: string; ms?: Record<string, number> };
        if (entry.ms !== undefined) {
          let list = applies.get(node);
          if (list === undefined) applies.set(node, (list = []));
          list.push({ reloaded: entry.msg === 'applied and reloaded', ms: entry.ms });
        }
      } catch {
        // not one of the agent's JSON lines
      }
    }
    return isWarning(line);
  };
}

function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

// ---------------------------------------------------------------------------------------------
// The API client: the global fetch (undici, keep-alive), bounded in time.

let baseUrl = '';
let adminToken = '';

class ApiError extends Error {}

async function api(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<any> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: {
      authorization: `Bearer ${adminToken}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (res.status >= 300) throw new ApiError(`${method} ${path} answered ${res.status}: ${text.slice(0, 1000)}`);
  return text ? JSON.parse(text) : null;
}

/** Polls `probe` until it returns a value; throws with `what` and the last state after `timeoutMs`. */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs: number,
  state?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    checkAlive();
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${state ? `: ${state()}` : ''}`,
      );
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Desired revisions as the writes answer them, with when each was first seen.

const timeline: { revision: number; at: number }[] = [];
let desired = 0;

function noteRevision(revision: unknown): void {
  if (typeof revision !== 'number') throw new Error(`a write answered without a revision: ${JSON.stringify(revision)}`);
  if (revision > desired) {
    desired = revision;
    timeline.push({ revision, at: performance.now() });
  }
}

/** Seconds since a revision newer than `applied` was first seen as desired; 0 when the node has the newest. */
function lagSeconds(applied: number, now: number): number {
  if (applied >= desired) return 0;
  let lo = 0;
  let hi = timeline.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (timeline[mid]!.revision > applied) hi = mid;
    else lo = mid + 1;
  }
  const first = timeline[lo];
  return first && first.revision > applied ? (now - first.at) / 1000 : 0;
}

interface NodeView {
  name: string;
  kind: 'haproxy' | 'nginx';
  appliedRevision: number | null;
  status: {
    desiredRevision: number | null;
    desiredHash: string | null;
    appliedHash: string | null;
    converged: boolean;
    waitingFor: string | null;
    runtime: { revision: number | null };
  };
}

/**
 * The revision a node runs: the one its newest built config stands for when it applied that
 * config (a version advanced to later revisions whose writes left its files alone counts as
 * those), else the one it last reported applying.
 */
function effectiveApplied(n: NodeView): number {
  if (n.status.appliedHash !== null && n.status.appliedHash === n.status.desiredHash)
    return n.status.desiredRevision ?? -1;
  return n.appliedRevision ?? -1;
}

async function fleetNodes(): Promise<NodeView[]> {
  return ((await api('GET', '/v1/nodes?limit=100', undefined, 60_000)) as { items: NodeView[] }).items;
}

const describeNodes = (nodes: readonly NodeView[]) =>
  nodes
    .map(
      (n) =>
        `${n.name} applied ${effectiveApplied(n)}, built ${n.status.desiredRevision}, ${n.status.converged ? 'converged' : `waiting for ${n.status.waitingFor}`}`,
    )
    .join('; ');

/** Every node converged with a config built at `atLeast` or later. */
async function allConverged(atLeast: number, timeoutMs: number, everyMs = 100): Promise<NodeView[]> {
  let last: NodeView[] = [];
  return waitFor(
    `every node to converge at revision ${atLeast} or later`,
    async () => {
      last = await fleetNodes();
      return last.every((n) => n.status.converged && (n.status.desiredRevision ?? -1) >= atLeast) ? last : undefined;
    },
    timeoutMs,
    everyMs,
    () => describeNodes(last),
  );
}

type Sums = Map<string, { sum: number; count: number }>;

/** The `_sum` and `_count` series of one of the control plane's histograms that `series` matches ((sum|count) first, the value last), keyed by `keyOf`. */
async function histogramSums(series: RegExp, keyOf: (m: RegExpMatchArray) => string): Promise<Sums> {
  const res = await fetch(`${baseUrl}/metrics`, {
    headers: { authorization: `Bearer ${adminToken}` },
    signal: AbortSignal.timeout(60_000),
  });
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const out: Sums = new Map();
  for (const m of (await res.text()).matchAll(series)) {
    const key = keyOf(m);
    const entry = out.get(key) ?? { sum: 0, count: 0 };
    entry[m[1] as 'sum' | 'count'] = Number(m.at(-1));
    out.set(key, entry);
  }
  return out;
}

/** Sum and count of the control plane's config-build histogram, by node kind. */
function buildMetrics(): Promise<Sums> {
  return histogramSums(
    /^switchyard_config_build_duration_seconds_(sum|count)\{kind="([a-z]+)"\} (\S+)$/gm,
    (m) => m[2]!,
  );
}

/**
 * The agents' requests as the control plane timed them (its request-duration histogram, the whole
 * run): per method, route and status, how many and their mean. A config fetch that found a newer
 * build answers at once; one that waited for it holds the wait too.
 */
async function agentRequestMetrics(): Promise<Record<string, { count: number; meanMs: number | null }>> {
  const sums = await histogramSums(
    /^switchyard_http_request_duration_seconds_(sum|count)\{method="([A-Z]+)",route="(\/v1\/nodes\/:node\/(?:config|status))",status="(\d+)"\} (\S+)$/gm,
    (m) => `${m[2]} ${m[3]} ${m[4]}`,
  );
  return Object.fromEntries(
    [...sums].map(([key, { sum, count }]) => [key, { count, meanMs: count > 0 ? num((sum / count) * 1000) : null }]),
  );
}

/** Mean build time (ms) per kind between two snapshots of the histogram. */
function buildDelta(before: Sums, after: Sums): Record<string, { builds: number; meanMs: number | null }> {
  const out: Record<string, { builds: number; meanMs: number | null }> = {};
  for (const [kind, a] of after) {
    const b = before.get(kind) ?? { sum: 0, count: 0 };
    const builds = a.count - b.count;
    out[kind] = { builds, meanMs: builds > 0 ? num(((a.sum - b.sum) / builds) * 1000) : null };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

interface FleetNode {
  readonly name: string;
  readonly kind: 'haproxy' | 'nginx';
  readonly configDir: string;
  readonly socket: string;
  /** The local admin socket in the node's socketDir (the control plane uses the mTLS listener). */
  readonly adminSocket: string;
  readonly statsPort: number | null;
  token: string;
}

/** One GET on a fresh connection, so the kernel picks a node (SO_REUSEPORT) for each. */
function getOnce(host: string, port: number): Promise<{ status: number; server: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host, port, path: '/', agent: false, headers: { connection: 'close' }, timeout: 3000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, server: res.headers.server as string | undefined }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Sessions a HAProxy node's frontend has taken (`stot`), or null when it has no such frontend. */
async function frontendSessions(n: FleetNode, frontend: string): Promise<number | null> {
  const text = await runtimeCommand(n.adminSocket, `show stat ${frontend} 1 -1`, 5000);
  const [header, ...rows] = text.trim().split('\n');
  if (!header?.startsWith('# ')) return null;
  const columns = header.slice(2).split(',');
  const row = rows.map((r) => r.split(',')).find((r) => r[0] === frontend && r[1] === 'FRONTEND');
  return row ? Number(row[columns.indexOf('stot')]) : null;
}

async function weightOn(n: FleetNode, backend: string, server: string): Promise<number | undefined> {
  const text = await runtimeCommand(n.adminSocket, `get weight ${backend}/${server}`, 2000).catch(() => '');
  const m = /^(\d+)/.exec(text.trim());
  return m ? Number(m[1]) : undefined;
}

// ---------------------------------------------------------------------------------------------

const members: (Closable & { port: number })[] = [];
let root: string | undefined;
let dropDatabase: (() => Promise<void>) | undefined;
let cleaned: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    stopping = true;
    // Agents first (so none reloads a proxy being stopped), then the proxies, then the control plane.
    for (const group of ['agent', 'proxy', 'control plane']) {
      await Promise.all(
        children.filter((c) => c.name.startsWith(group)).map((c) => stopChild(c).catch(() => undefined)),
      );
    }
    await Promise.all(children.map((c) => stopChild(c).catch(() => undefined)));
    for (const m of members) await m.close().catch(() => undefined);
    if (KEEP_DB) log(`kept the database: ${keptEnvironment}`);
    else
      await dropDatabase?.().catch((err: unknown) =>
        log(`could not drop the scratch database: ${(err as Error).message}`),
      );
    if (root) rmSync(root, { recursive: true, force: true });
  })();
  return cleaned;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping everything started here`);
    void cleanup().finally(() => process.exit(130));
  });
}

const started = performance.now();
try {
  // --- The control plane, as `npm start` runs it, on a scratch database.
  const db = await scratchDatabase(`sy_bench_scale_${process.pid}`);
  dropDatabase = db.drop;
  root = mkdtempSync(join(tmpdir(), 'sy-scale-'));
  adminToken = `sy_bench_${randomBytes(16).toString('hex')}`;
  const secretKey = randomBytes(32).toString('base64');
  keptEnvironment = `DATABASE_URL=${db.url} SWITCHYARD_ADMIN_TOKEN=${adminToken} SWITCHYARD_SECRET_KEY=${secretKey}`;
  const cpPort = await freePort('127.0.0.1');
  baseUrl = `http://127.0.0.1:${cpPort}`;
  const cp = track(
    'control plane',
    spawn(process.execPath, [...START.nodeArgs, ...CP_NODE_ARGS, ...START.args], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...START.env,
        DATABASE_URL: db.url,
        HOST: '127.0.0.1',
        PORT: String(cpPort),
        SWITCHYARD_ADMIN_TOKEN: adminToken,
        SWITCHYARD_SECRET_KEY: secretKey,
        LOG_LEVEL: 'warn',
        SWITCHYARD_RECONCILE: 'true',
        // The poller's and rebalancer's periodic passes would land at random points of the stream.
        SWITCHYARD_STATS: 'false',
        SWITCHYARD_REBALANCE: 'false',
        // The HAProxy nodes are registered before their proxies run: retry their Runtime API soon once they do.
        SWITCHYARD_RECONCILE_RETRY_MAX_MS: '1000',
      },
    }),
    // Its warnings from before the proxies run (Runtime API refused) are expected; kept in its tail only.
    (line) => fleetUp && isWarning(line),
  );
  await waitFor(
    'the control plane to be ready',
    async () => {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
      return res?.status === 200 ? true : undefined;
    },
    60_000,
    200,
  );
  log(`control plane pid ${cp.pid} ready at ${baseUrl}`);

  // --- Members: a few HTTP servers on loopback, shared by every tenant.
  for (const [i, host] of MEMBER_HOSTS.entries()) members.push(await httpMember(`m${i + 1}`, host));
  const vipPort = await freePort(vipAddress(0));

  // --- Nodes: registered through the API; agents first, then the proxies on the agents' files.
  const capacity = {
    vcpu: Math.max(4, Math.ceil(TENANTS * RESERVATION.vcpu * 1.1)),
    memoryMb: Math.max(8192, Math.ceil(TENANTS * RESERVATION.memoryMb * 1.1)),
  };
  const nodes: FleetNode[] = [];
  for (const [name, kind] of [
    ['edge-1', 'haproxy'],
    ['edge-2', 'haproxy'],
    ['edge-3', 'nginx'],
  ] as const) {
    const statsPort = kind === 'haproxy' ? await freePort('127.0.0.1') : null;
    mkdirSync(join(root, name));
    const configDir = join(root, name, 'etc');
    const created = await api('POST', '/v1/nodes', {
      name,
      kind,
      capacity,
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
  const haproxyNodes = nodes.filter((n) => n.kind === 'haproxy');
  for (const n of FLEET === 'full' ? nodes : []) {
    track(
      `agent ${n.name}`,
      spawn(
        process.execPath,
        [
          join(REPO, 'bin', 'switchyard.mjs'),
          'agent',
          '--control-plane',
          baseUrl,
          '--node',
          n.name,
          '--kind',
          n.kind,
          '--config-dir',
          n.configDir,
          '--master-socket',
          n.socket,
          '--wait',
          String(AGENT_WAIT_S),
          '--heartbeat',
          '2',
          '--reload-timeout',
          '60',
        ],
        {
          cwd: REPO,
          stdio: ['ignore', 'pipe', 'pipe'],
          // info: each apply's line says where its time went (validation, reload).
          env: { ...process.env, SWITCHYARD_AGENT_TOKEN: n.token, LOG_LEVEL: 'info' },
        },
      ),
      agentLine(n.name),
    );
  }
  let seen: NodeView[] = [];
  if (FLEET === 'full')
    await waitFor(
      'every agent to apply its first config',
      async () => {
        seen = await fleetNodes();
        return seen.every((n) => n.status.desiredHash !== null && n.status.appliedHash === n.status.desiredHash)
          ? true
          : undefined;
      },
      60_000,
      200,
      () => describeNodes(seen),
    );
  for (const n of FLEET === 'full' ? nodes : []) {
    const proc =
      n.kind === 'haproxy'
        ? spawn('haproxy', ['-W', '-db', '-S', n.socket, '-f', join(n.configDir, 'haproxy.cfg')], {
            stdio: ['ignore', 'pipe', 'pipe'],
          })
        : spawn('nginx', ['-c', join(n.configDir, 'nginx.conf'), '-p', `${n.configDir}/`, '-g', 'daemon off;'], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    track(
      `proxy ${n.name}`,
      proc,
      (line) => /ALERT|emerg|\[alert\]|\[crit\]/i.test(line) && !BENIGN_PROXY_LINES.test(line),
    );
  }
  for (const n of FLEET === 'full' ? haproxyNodes : []) {
    await waitFor(
      `${n.name}'s Runtime API`,
      async () =>
        (await runtimeCommand(n.adminSocket, 'show info', 1000).catch(() => '')).includes('Pid:') ? true : undefined,
      15_000,
      100,
    );
  }
  if (FLEET === 'full') {
    await waitFor(
      'nginx to start',
      async () => (existsSync(join(nodes[2]!.configDir, 'nginx.pid')) ? true : undefined),
      15_000,
      100,
    );
    await allConverged(0, 60_000, 200);
  }
  fleetUp = true;
  log(
    `fleet up: ${nodes.map((n) => `${n.name} (${n.kind})`).join(', ')}; ${TENANTS} tenants by ${CLIENTS} clients, VIPs on port ${vipPort}`,
  );

  // --- The stream of writes.
  const windowCount = Math.ceil(TENANTS / STEP);
  const windowLatencies: number[][] = Array.from({ length: windowCount }, () => []);
  const boundaries: {
    upTo: number;
    at: number;
    writes: number;
    rssMb: number;
    build: Promise<Map<string, { sum: number; count: number }> | null>;
  }[] = [];
  const lags = new Map<string, number[]>(nodes.map((n) => [n.name, []]));
  let latestSample: NodeView[] = [];
  let tenantsDone = 0;
  let writes = 0;
  let next = 0;
  let lastTenant = -1;
  let lastWriteAt = 0;
  let streamDone = false;
  let failure: unknown;
  let progressMark = { tenants: 0, writes: 0, at: 0 };

  const write = async (method: string, path: string, body: unknown) => {
    const t0 = performance.now();
    const answer = await api(method, path, body);
    const now = performance.now();
    noteRevision(answer?.revision);
    windowLatencies[Math.min(windowCount - 1, Math.floor(tenantsDone / STEP))]!.push(now - t0);
    writes++;
    lastWriteAt = now;
    return answer;
  };

  const createTenant = async (i: number) => {
    const id = tenantId(i);
    const a = members[i % members.length]!;
    const b = members[(i + 1) % members.length]!;
    await write('POST', '/v1/tenants', { id, reservation: RESERVATION });
    await write('POST', `/v1/tenants/${id}/pools`, { name: 'web' });
    await write('PUT', `/v1/tenants/${id}/pools/web/members`, {
      members: [
        { name: 'm1', address: MEMBER_HOSTS[i % members.length], port: a.port },
        { name: 'm2', address: MEMBER_HOSTS[(i + 1) % members.length], port: b.port },
      ],
    });
    await write('POST', `/v1/tenants/${id}/vips`, {
      name: 'www',
      address: vipAddress(i),
      port: vipPort,
      protocol: 'http',
      defaultPool: 'web',
    });
  };

  const progress = () => {
    const now = performance.now();
    const rate = (writes - progressMark.writes) / ((now - progressMark.at) / 1000);
    progressMark = { tenants: tenantsDone, writes, at: now };
    const agents = latestSample
      .map(
        (n) =>
          `${n.name} ${effectiveApplied(n)}/${desired} (${lagSeconds(effectiveApplied(n), now).toFixed(1)} s behind)`,
      )
      .join(', ');
    log(
      `${tenantsDone}/${TENANTS} tenants, ${writes} writes, ${rate.toFixed(0)} writes/s, ${((now - streamStart) / 1000).toFixed(1)} s, control plane RSS ${memoryOf(cp.pid).rssMb.toFixed(0)} MB; applied/desired: ${agents}`,
    );
  };

  const client = async () => {
    for (;;) {
      if (failure !== undefined || stopping) return;
      const i = next++;
      if (i >= TENANTS) return;
      try {
        await createTenant(i);
      } catch (err) {
        failure ??= err;
        return;
      }
      tenantsDone++;
      lastTenant = i;
      if (tenantsDone % STEP === 0 || tenantsDone === TENANTS) {
        boundaries.push({
          upTo: tenantsDone,
          at: performance.now(),
          writes,
          rssMb: memoryOf(cp.pid).rssMb,
          build: buildMetrics().catch(() => null),
        });
      }
      if (tenantsDone % PROGRESS_EVERY === 0) progress();
    }
  };

  const sampler = async () => {
    while (!streamDone && FLEET === 'full') {
      const t0 = performance.now();
      try {
        checkAlive();
        const sample = await fleetNodes();
        const now = performance.now();
        latestSample = sample;
        for (const n of sample) lags.get(n.name)?.push(lagSeconds(effectiveApplied(n), now));
      } catch (err) {
        failure ??= err;
        return;
      }
      await sleep(Math.max(0, SAMPLE_MS - (performance.now() - t0)));
    }
  };

  const baseline = await buildMetrics();
  const rssAtStartMb = memoryOf(cp.pid).rssMb;
  const streamStart = performance.now();
  progressMark = { tenants: 0, writes: 0, at: streamStart };
  const sampling = sampler();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  streamDone = true;
  await sampling;
  if (failure !== undefined) throw failure;
  const streamEnd = lastWriteAt;
  const lastRevision = desired;
  log(
    `stream done: ${writes} writes in ${((streamEnd - streamStart) / 1000).toFixed(1)} s; waiting for the fleet to converge at revision ${lastRevision}`,
  );

  // --- After the last write: convergence, then the last tenant's VIP through every node.
  const fleetCheck = FLEET === 'full' ? await checkServed(lastRevision) : await builtFor(lastRevision);
  const { convergedAfterLastWriteS, lastVip, lastVipServes } = fleetCheck;

  async function builtFor(revision: number) {
    let last: NodeView[] = [];
    await waitFor(
      `a build at revision ${revision} for every node`,
      async () => {
        last = await fleetNodes();
        return last.every((n) => (n.status.desiredRevision ?? -1) >= revision) ? true : undefined;
      },
      CONVERGE_TIMEOUT_MS,
      50,
      () => describeNodes(last),
    );
    log(
      `every node built at revision ${revision} ${((performance.now() - streamEnd) / 1000).toFixed(2)} s after the last write (no agents: nothing applies it)`,
    );
    return { convergedAfterLastWriteS: null, lastVip: null, lastVipServes: null };
  }

  async function checkServed(revision: number) {
    const convergedNodes = await allConverged(revision, CONVERGE_TIMEOUT_MS, 50);
    const convergedAfterLastWriteS = (performance.now() - streamEnd) / 1000;
    log(`converged ${convergedAfterLastWriteS.toFixed(2)} s after the last write: ${describeNodes(convergedNodes)}`);

    const lastId = tenantId(lastTenant);
    const lastAddress = vipAddress(lastTenant);
    const placement = await api('GET', `/v1/tenants/${lastId}/placement`);
    const placedOn: string[] = Array.isArray(placement?.nodes)
      ? placement.nodes
          .map((p: any) => (typeof p === 'string' ? p : (p.node ?? p.name)))
          .filter((x: unknown) => typeof x === 'string')
      : [];
    const frontend = `fe_${lastId}_www`;
    const placedHaproxy = haproxyNodes.filter((n) => placedOn.includes(n.name));
    const before = await Promise.all(placedHaproxy.map((n) => frontendSessions(n, frontend)));
    let requests = 0;
    let ok = 0;
    let fromNginx = 0;
    const failures: string[] = [];
    let after: (number | null)[] = before;
    const served = () => {
      const byNode: Record<string, number> = {};
      placedHaproxy.forEach((n, k) => {
        byNode[n.name] = after[k] !== null && before[k] !== null ? after[k]! - before[k]! : 0;
      });
      for (const n of nodes.filter((x) => x.kind === 'nginx' && placedOn.includes(x.name))) byNode[n.name] = fromNginx;
      return byNode;
    };
    // Up to 4 rounds of 30 fresh connections, until every node the tenant is placed on has served one.
    for (let roundNo = 0; roundNo < 4; roundNo++) {
      for (let k = 0; k < 30; k++) {
        requests++;
        try {
          const answer = await getOnce(lastAddress, vipPort);
          if (answer.status === 200) ok++;
          else failures.push(`status ${answer.status}`);
          if (answer.server?.startsWith('nginx')) fromNginx++;
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      after = await Promise.all(placedHaproxy.map((n) => frontendSessions(n, frontend)));
      if (Object.values(served()).every((c) => c > 0)) break;
    }
    const servedBy = served();
    const lastVipServes =
      requests > 0 && ok === requests && placedOn.length > 0 && Object.values(servedBy).every((c) => c > 0);
    log(
      `last VIP ${lastAddress}:${vipPort} (${lastId}, placed on ${placedOn.join(', ')}): ${ok}/${requests} answered 200; served by ${JSON.stringify(servedBy)}${failures.length ? `; failures: ${[...new Set(failures)].slice(0, 3).join(', ')}` : ''}`,
    );
    return {
      convergedAfterLastWriteS,
      lastVip: { tenant: lastId, address: `${lastAddress}:${vipPort}`, placedOn, requests, ok200: ok, servedBy },
      lastVipServes,
    };
  }

  // --- One-member changes at full scale.
  log(`${CHANGES} one-member weight changes`);
  const changeMs: number[] = [];
  const changeBuilds: Record<string, number[]> = {};
  let metricsBefore = await buildMetrics();
  const metricsAtStart = metricsBefore;
  for (let k = 0; k < CHANGES; k++) {
    const i = Math.min(TENANTS - 1, Math.floor(((k + 0.5) * TENANTS) / CHANGES));
    const id = tenantId(i);
    const tenantPlacement = await api('GET', `/v1/tenants/${id}/placement`);
    const on: string[] = (tenantPlacement?.nodes ?? []).map((p: any) =>
      typeof p === 'string' ? p : (p.node ?? p.name),
    );
    const targets = haproxyNodes.filter((n) => on.includes(n.name));
    if (targets.length === 0)
      throw new Error(
        `tenant ${id} is placed on no HAProxy node (placement: ${JSON.stringify(tenantPlacement).slice(0, 500)})`,
      );
    const weight = 10 + (k % 200);
    const answer = await api('PATCH', `/v1/tenants/${id}/pools/web/members/m1`, { weight });
    const returned = performance.now();
    noteRevision(answer?.revision);
    const liveAt = new Map<string, number>();
    const deadline = returned + 60_000;
    while (FLEET === 'none') {
      // No proxy to read the weight from: the change is done when every HAProxy node's build has it.
      const built = await fleetNodes();
      const now = performance.now();
      if (
        targets.every((n) => (built.find((b) => b.name === n.name)?.status.desiredRevision ?? -1) >= answer.revision)
      ) {
        for (const n of targets) liveAt.set(n.name, now);
        break;
      }
      if (now > deadline)
        throw new Error(
          `no build at revision ${answer.revision} for ${targets.map((n) => n.name).join(', ')} 60 s after the write`,
        );
      await sleep(2);
    }
    while (liveAt.size < targets.length) {
      const pending = targets.filter((n) => !liveAt.has(n.name));
      const live = await Promise.all(pending.map((n) => weightOn(n, `be_${id}_web`, 'm1')));
      const now = performance.now();
      pending.forEach((n, j) => {
        if (live[j] === weight) liveAt.set(n.name, now);
      });
      if (liveAt.size === targets.length) break;
      if (now > deadline)
        throw new Error(
          `weight ${weight} of ${id}/web/m1 not live on ${pending.map((n) => n.name).join(', ')} 60 s after the write (live: ${JSON.stringify(live)})`,
        );
      checkAlive();
      await sleep(1);
    }
    changeMs.push(Math.max(...liveAt.values()) - returned);
    // The build follows the push: wait for it (and the NGINX reload) before the next change.
    if (FLEET === 'full') await allConverged(answer.revision, CONVERGE_TIMEOUT_MS, 20);
    else await builtFor(answer.revision);
    const metricsAfter = await buildMetrics();
    for (const [kind, d] of Object.entries(buildDelta(metricsBefore, metricsAfter))) {
      if (d.meanMs !== null) (changeBuilds[kind] ??= []).push(d.meanMs);
    }
    metricsBefore = metricsAfter;
  }
  const totalBuilds = buildDelta(metricsAtStart, metricsBefore);
  const buildMs: Record<string, { builds: number; meanMs: number | null; p50Ms: number | null; p99Ms: number | null }> =
    {};
  for (const [kind, d] of Object.entries(totalBuilds)) {
    const xs = changeBuilds[kind] ?? [];
    buildMs[kind] = { builds: d.builds, meanMs: d.meanMs, p50Ms: num(pct(xs, 50)), p99Ms: num(pct(xs, 99)) };
  }

  // --- Figures.
  const memory = memoryOf(cp.pid);
  const builds = await Promise.all(boundaries.map((b) => b.build));
  const windows = boundaries.map((b, k) => {
    const prev = k === 0 ? { at: streamStart, writes: 0 } : boundaries[k - 1]!;
    const seconds = (b.at - prev.at) / 1000;
    const count = b.writes - prev.writes;
    const lat = windowLatencies[k] ?? [];
    const buildBefore = k === 0 ? baseline : builds[k - 1];
    const buildAfter = builds[k];
    return {
      upTo: b.upTo,
      writes: count,
      writesPerS: num(count / seconds, 1),
      msPerWrite: num((seconds * 1000) / count),
      latencyP50Ms: num(pct(lat, 50)),
      latencyP99Ms: num(pct(lat, 99)),
      rssMb: num(b.rssMb, 0),
      buildMs: buildBefore && buildAfter ? buildDelta(buildBefore, buildAfter) : null,
    };
  });
  const first = windows[0]!;
  const last = windows.at(-1)!;
  const throughputRatio = (last.writesPerS ?? NaN) / (first.writesPerS ?? NaN);
  const lag: Record<string, { samples: number; p50S: number | null; p99S: number | null; maxS: number | null }> = {};
  for (const [name, xs] of lags)
    lag[name] = {
      samples: xs.length,
      p50S: num(pct(xs, 50)),
      p99S: num(pct(xs, 99)),
      maxS: num(xs.length ? Math.max(...xs) : NaN),
    };
  /** Per node, its applies and where their time went: each step's p50 / p99 in ms. */
  const agentApplies: Record<string, object> = {};
  for (const [name, list] of applies) {
    const step = (key: string) => {
      const xs = list.map((a) => a.ms[key]).filter((x): x is number => x !== undefined);
      return xs.length === 0 ? null : { p50: num(pct(xs, 50)), p99: num(pct(xs, 99)) };
    };
    agentApplies[name] = {
      applies: list.length,
      reloads: list.filter((a) => a.reloaded).length,
      fetchMs: step('fetch'),
      totalMs: step('total'),
      validateMs: step('validate'),
      reloadMs: step('reload'),
      stageMs: step('stage'),
    };
  }
  const memberP99 = pct(changeMs, 99);
  // The target is the HAProxy node's build (the Runtime API made the change live; NGINX nodes render whole and reload).
  const haproxyBuildP99 = buildMs.haproxy?.p99Ms ?? Infinity;
  const targetsMet = {
    throughputRatio: throughputRatio >= 0.8,
    ...(FLEET === 'full' && {
      lagP99: Object.values(lag).every((l) => l.p99S !== null && l.p99S <= 5),
      convergedAfterLastWrite: convergedAfterLastWriteS !== null && convergedAfterLastWriteS <= 5,
      lastVipServes: lastVipServes === true,
      memberChangeP99: memberP99 <= 100,
    }),
    buildP99: haproxyBuildP99 <= 50,
    rss: memory.rssMb <= 300,
  };
  const line = {
    bench: 'scale',
    tenants: TENANTS,
    step: STEP,
    clients: CLIENTS,
    fleet: FLEET,
    agentWaitS: FLEET === 'full' ? AGENT_WAIT_S : null,
    nodes: nodes.map((n) => `${n.name}:${n.kind}`),
    writes,
    streamS: num((streamEnd - streamStart) / 1000, 1),
    writesPerS: num(writes / ((streamEnd - streamStart) / 1000), 1),
    windows,
    throughputRatio: num(throughputRatio),
    lag: FLEET === 'full' ? lag : null,
    agentApplies: FLEET === 'full' ? agentApplies : null,
    agentRequests: FLEET === 'full' ? await agentRequestMetrics() : null,
    convergedAfterLastWriteS: convergedAfterLastWriteS === null ? null : num(convergedAfterLastWriteS),
    lastVip,
    lastVipServes,
    memberChange: {
      until:
        FLEET === 'full'
          ? 'live on every HAProxy node it is placed on'
          : 'built for every HAProxy node it is placed on',
      changes: changeMs.length,
      p50Ms: num(pct(changeMs, 50)),
      p99Ms: num(memberP99),
      maxMs: num(Math.max(...changeMs)),
    },
    buildMs,
    rssAtStartMb: num(rssAtStartMb, 0),
    rssMb: num(memory.rssMb, 0),
    peakRssMb: num(memory.peakMb, 0),
    totalS: num((performance.now() - started) / 1000, 1),
    targets:
      'throughput last/first window >= 0.8; agent lag p99 <= 5 s; converged <= 5 s after the last write; last VIP served by every node; member change p99 <= 100 ms; HAProxy build p99 <= 50 ms; RSS <= 300 MB',
    targetsMet,
    met: Object.values(targetsMet).every(Boolean),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
} catch (err) {
  log(`FAILED: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
  log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
