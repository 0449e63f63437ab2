import type { Db } from '../db/connect.js';
import { allNodes } from '../db/node-repository.js';
import { insertSamples, pruneStats, upsertRollups } from '../db/stat-repository.js';
import type { ProxyNode } from '../domain/node.js';
import { nginxSamples, type NginxReading } from '../domain/nginx-samples.js';
import type { NginxRuntimeChannel, NginxStats } from '../domain/nginx-runtime.js';
import { rollupIncrements, toSamples, withConnectionCaps, type StatSample } from '../domain/stats.js';
import { mergeWorkerSamples, type WorkerCounters, type WorkerSamples } from '../domain/worker-samples.js';
import { showMap } from '../fleet/runtime-api/commands/map-commands.js';
import { showInfo, showStatOfTypes } from '../fleet/runtime-api/commands/stat-commands.js';
import { readOldWorkers, type OldWorkerReplies } from '../fleet/runtime-api/read-old-workers.js';
import { OneShotRuntimeClient } from '../fleet/runtime-api/one-shot-runtime-client.js';
import type { RuntimeTls } from '../fleet/runtime-api/connection/runtime-client-tls.js';
import { parseShowInfo } from '../fleet/replies/show-info.js';
import { parseShowMap } from '../fleet/replies/show-map.js';
import { parseShowStat } from '../fleet/replies/show-stat.js';
import type { CommandResult, RuntimeExecutor } from '../fleet/runtime-api/runtime-executor.js';
import type { Logger } from '../logger.js';
import { connectionCapOwner, proxyOwner } from '../render/haproxy-names.js';
import { capsMapFile } from '../render/haproxy-runtime-view.js';
import { upstreamName } from '../render/nginx-names.js';
import { every, type Scheduled } from './schedule.js';

export interface StatsPollerDeps {
  readonly db: Db;
  /** The shared pool: one Runtime API connection per node, the reconciler's too. */
  readonly clients: {
    client(node: string, endpoint: { readonly host: string; readonly port: number }): RuntimeExecutor;
  };
  /**
   * The NGINX nodes' runtime channels (mTLS to the Lua module on their runtimeAddress), shared with
   * the reconciler: the poller asks for one per node and poll and never closes it. Absent: NGINX
   * nodes are skipped, as before they had a channel.
   */
  readonly nginxChannels?:
    | {
        channel(node: string, endpoint: { readonly host: string; readonly port: number }): NginxRuntimeChannel;
      }
    | undefined;
  readonly logger: Logger;
  readonly metrics?:
    | {
        readonly tenantUsage: { reset(): void; set(labels: { tenant: string; resource: string }, value: number): void };
      }
    | undefined;
  readonly now?: () => Date;
  /**
   * The CLI of a node's HAProxy master (`-S`), asked per poll; tests pass fakes. By default a
   * connection per command (OneShotRuntimeClient), not the shared pool: the pool's clients speak the worker
   * CLI's `prompt` mode, whose replies end in "\n> " and which they probe with `show info`, and the
   * master prompts "master> " and knows no `show info`. A poll sends the master one `show proc`
   * plus one `@!<pid> show stat` per old worker, so a connection each costs little.
   */
  readonly masterCli?: (
    endpoint: { readonly host: string; readonly port: number },
    timeoutMs: number,
  ) => RuntimeExecutor;
  /** TLS for the default master CLI connections (the node's mTLS listener); absent: plain TCP. */
  readonly tls?: RuntimeTls | undefined;
}

export interface StatsPollerOptions {
  readonly intervalS: number;
  readonly nodeTimeoutMs: number;
  readonly rawRetentionS: number;
  readonly rollupRetentionS: number;
}

export type NodePoll =
  | { readonly node: string; readonly ok: true; readonly samples: number }
  | { readonly node: string; readonly ok: false; readonly error: string };

export interface PollResult {
  readonly nodes: readonly NodePoll[];
  /** Nodes not polled: no runtime address (HAProxy Runtime API, NGINX runtime channel), or NGINX without a channel factory. */
  readonly skipped: readonly string[];
  readonly pruned: { readonly raw: number; readonly rollups: number } | null;
}

/** Frontend, backend and server rows: everything but listeners (one row per bind line). */
const STAT_COMMAND = showStatOfTypes(['frontend', 'backend', 'server']);
/** Sent before STAT_COMMAND on nodes with a master CLI: the same session's worker PID. */
const INFO_COMMAND = showInfo();

/** What one HAProxy node's read gave: the current worker's replies and, with a master CLI, the old workers'. */
interface NodeReplies {
  readonly stat: CommandResult | undefined;
  /** `show map` of the caps map: each tenant's connection cap. */
  readonly map: CommandResult | undefined;
  /** `show info` of the worker that answered `stat`; null without a master CLI. */
  readonly info: CommandResult | undefined | null;
  /** null without a master CLI. */
  readonly old: OldWorkerReplies | null;
}

/** What one node's read gave: HAProxy's Runtime API replies, or NGINX's stats (or why there are none). */
type NodeRead =
  | { readonly kind: 'haproxy'; readonly node: ProxyNode; readonly reply: NodeReplies; readonly at: Date }
  | {
      readonly kind: 'nginx';
      readonly node: ProxyNode;
      readonly reply:
        | { readonly ok: true; readonly stats: NginxStats }
        | { readonly ok: false; readonly error: string };
      readonly at: Date;
    };

/**
 * Tenant → connection cap from the caps map's reply; empty when it could not be read (no tenant
 * yet, or an older config): the frontends' samples then keep their maxconn.
 */
function connectionCaps(reply: CommandResult | undefined): Map<string, number> {
  const caps = new Map<string, number>();
  if (reply?.status !== 'ok') return caps;
  try {
    for (const { key, value } of parseShowMap(reply.output)) {
      const tenant = connectionCapOwner(key);
      const cap = Number(value);
      if (tenant !== null && Number.isInteger(cap)) caps.set(tenant, cap);
    }
  } catch {
    caps.clear();
  }
  return caps;
}

const defaultMasterCli =
  (tls: RuntimeTls | undefined) =>
  (endpoint: { readonly host: string; readonly port: number }, timeoutMs: number): RuntimeExecutor =>
    new OneShotRuntimeClient(
      { host: endpoint.host, port: endpoint.port, tls },
      { target: 'master', connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs },
    );

/**
 * Reads `show stat` from every HAProxy node with a Runtime API, concurrently, each bounded by its
 * own timeout, and stores per-frontend, per-backend and per-member samples (with rates against the
 * node's previous read), the current minute's rollups, and applies retention. On a node with a
 * master CLI (`masterAddress`) the old workers still serving sessions after a reload are read too,
 * through the master, within the same timeout, and summed in (see mergeWorkerSamples); a master
 * that does not answer leaves the node's samples to its current worker and is logged once. A node
 * that cannot be read is logged when it starts and stops failing, and fails no other node's read
 * (the others' samples are stored once it answers or times out). Member health (UP, DOWN, MAINT) stays the
 * reconciler's to store; the samples carry each member's status too.
 * NGINX nodes with a runtime channel are read in the same poll, within the same timeout, through
 * their channel's `stats()`, and become the same samples (see domain/nginx-samples.ts): a frontend
 * per VIP, a backend per pool, a member per peer, with rates against the node's previous read.
 * Their member health is the reconciler's too (its NGINX pass); their samples carry no status.
 * Runs on the leader only: start on election, stop when deposed.
 */
export class StatsPoller {
  private schedule: Scheduled | null = null;
  private stopping: Promise<void> | null = null;
  /** Each node's last read: when, and each worker's counters by sample key. */
  private readonly previous = new Map<string, { readonly at: number; readonly workers: readonly WorkerCounters[] }>();
  /** Each NGINX node's last read: when (control plane's clock) and its objects' counters (see NginxReading). */
  private readonly nginxPrevious = new Map<string, { readonly at: number; readonly reading: NginxReading }>();
  /** Each node's last master CLI outcome (null: fine), logged like `failing`. */
  private readonly masterFailing = new Map<string, string | null>();
  /** Per NGINX node, the dictionaries' overflow counts last seen: a rise is logged once. */
  private readonly nginxOverflow = new Map<string, string>();
  /** Each node's last outcome (null: fine), so failures are logged once per change. */
  private readonly failing = new Map<string, string | null>();
  /** Called once each poll's samples are stored: the rebalancer runs on fresh demand, not on a timer of its own. */
  private readonly polledListeners: (() => void)[] = [];

  constructor(
    private readonly deps: StatsPollerDeps,
    private readonly options: StatsPollerOptions,
  ) {}

  get running(): boolean {
    return this.schedule !== null;
  }

  start(): void {
    if (this.schedule !== null) return;
    this.schedule = every(
      this.options.intervalS,
      async () => void (await this.poll()),
      (err) => this.deps.logger.warn({ err }, 'stats poll failed; the next tick retries'),
    );
  }

  /** `listener` runs right after every poll, its samples stored (it must not throw; it is not awaited). */
  onPolled(listener: () => void): void {
    this.polledListeners.push(listener);
  }

  /** Stops the schedule; resolves once a poll in flight has ended. */
  stop(): Promise<void> {
    const schedule = this.schedule;
    if (schedule === null) return this.stopping ?? Promise.resolve();
    this.schedule = null;
    // A second stop (deposed, then shutdown) waits for the same one.
    this.stopping = schedule.stop().finally(() => {
      this.stopping = null;
      // A new leadership starts from fresh counters: the gap would blur the first rates.
      this.previous.clear();
      this.nginxPrevious.clear();
    });
    return this.stopping;
  }

  /** One cycle over every node (the schedule calls it; tests and benchmarks may too). */
  async poll(): Promise<PollResult> {
    let nodes: ProxyNode[];
    try {
      nodes = await allNodes(this.deps.db);
    } catch (err) {
      this.deps.logger.warn({ err }, 'stats poller cannot list nodes; the next tick retries');
      return { nodes: [], skipped: [], pruned: null };
    }
    const readable = nodes.filter(
      (n) => n.runtimeAddress !== null && (n.kind === 'haproxy' || this.deps.nginxChannels !== undefined),
    );
    const skipped = nodes.filter((n) => !readable.includes(n)).map((n) => n.name);
    const known = new Set(nodes.map((n) => n.name));
    // A name registered again as the other kind starts from no baseline.
    const haproxy = new Set(nodes.filter((n) => n.kind === 'haproxy').map((n) => n.name));
    const nginx = new Set(nodes.filter((n) => n.kind === 'nginx').map((n) => n.name));
    for (const name of this.previous.keys()) if (!haproxy.has(name)) this.previous.delete(name);
    for (const name of this.nginxPrevious.keys()) if (!nginx.has(name)) this.nginxPrevious.delete(name);
    for (const name of this.failing.keys()) if (!known.has(name)) this.failing.delete(name);
    for (const name of this.masterFailing.keys()) if (!known.has(name)) this.masterFailing.delete(name);

    // Every node is read before any reply is parsed: parsing blocks the event loop (tens of ms per
    // thousand objects), and a reply that arrived meanwhile had it counted against its own node's
    // timeout (bench:alloc, 20 nodes of 2,500 objects: reads of ~0.3 s took up to 5 s, one timed out).
    const replies = await Promise.all(
      readable.map((node) => (node.kind === 'nginx' ? this.readNginx(node) : this.read(node))),
    );
    const polled = await Promise.all(
      replies.map((r) =>
        r.kind === 'nginx' ? this.storeNginx(r.node, r.reply, r.at) : this.store(r.node, r.reply, r.at),
      ),
    );
    this.publishUsage(polled.flatMap((p) => p.samples));
    for (const listener of this.polledListeners) listener();
    const now = this.now();
    let pruned: PollResult['pruned'] = null;
    try {
      pruned = await pruneStats(
        this.deps.db,
        new Date(now.getTime() - this.options.rawRetentionS * 1000),
        new Date(now.getTime() - this.options.rollupRetentionS * 1000),
      );
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not apply stats retention; the next poll retries');
    }
    return { nodes: polled.map((p) => p.result), skipped, pruned };
  }

  /**
   * One NGINX node's `stats()` through its channel, bounded by the node timeout (a reply that comes
   * later is dropped; the channel's own timeouts end the request).
   */
  private async readNginx(node: ProxyNode): Promise<NodeRead & { kind: 'nginx' }> {
    const timeoutMs = this.options.nodeTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      const channel = this.deps.nginxChannels!.channel(node.name, node.runtimeAddress!);
      const stats = await Promise.race([
        channel.stats(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      this.noteOverflow(node.name, stats.overflow);
      return { kind: 'nginx', node, reply: { ok: true, stats }, at: this.now() };
    } catch (err) {
      return {
        kind: 'nginx',
        node,
        reply: { ok: false, error: err instanceof Error ? err.message : String(err) },
        at: this.now(),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** A full shared dictionary loses writes (see docs/nginx.md): say so when its count moves. */
  private noteOverflow(node: string, overflow: Readonly<Record<string, number>> | undefined): void {
    if (overflow === undefined) return;
    const seen = JSON.stringify(overflow);
    const before = this.nginxOverflow.get(node);
    this.nginxOverflow.set(node, seen);
    if (seen === before || Object.values(overflow).every((n) => n === 0)) return;
    this.deps.logger.warn(
      { node, overflow },
      'an NGINX shared dictionary is full: writes it had no room for were dropped (stats under-count, caps fail open); a restart of nginx clears counters of removed objects, or move tenants off the node (docs/nginx.md)',
    );
  }

  private async read(node: ProxyNode): Promise<NodeRead & { kind: 'haproxy' }> {
    const timeoutMs = this.options.nodeTimeoutMs;
    const worker = this.deps.clients.client(node.name, node.runtimeAddress!);
    // The caps map too: a tenant's connection cap lives there, not in its frontends' maxconn.
    const caps = showMap(capsMapFile(node.configDir));
    if (node.masterAddress === null) {
      const [stat, map] = await worker.execute([STAT_COMMAND, caps], { timeoutMs });
      return { kind: 'haproxy', node, reply: { stat, map, info: null, old: null }, at: this.now() };
    }
    const masterCli = (this.deps.masterCli ?? defaultMasterCli(this.deps.tls))(node.masterAddress, timeoutMs);
    const current = worker.execute([INFO_COMMAND, STAT_COMMAND, caps], { timeoutMs });
    const [[info, stat, map], old] = await Promise.all([
      current,
      readOldWorkers(
        masterCli,
        STAT_COMMAND,
        timeoutMs,
        current.then(([i]) => workerPid(i)),
      ),
    ]);
    return { kind: 'haproxy', node, reply: { stat, map, info, old }, at: this.now() };
  }

  private async store(
    node: ProxyNode,
    reply: NodeReplies,
    at: Date,
  ): Promise<{ result: NodePoll; samples: StatSample[] }> {
    let current: WorkerSamples;
    try {
      const { stat } = reply;
      if (stat === undefined || stat.status !== 'ok') throw new Error(stat === undefined ? 'no reply' : stat.message);
      current = { pid: workerPid(reply.info), samples: toSamples(parseShowStat(stat.output), proxyOwner) };
    } catch (err) {
      const error = `cannot read stats: ${err instanceof Error ? err.message : String(err)}`;
      this.outcome(node.name, error);
      return { result: { node: node.name, ok: false, error }, samples: [] };
    }
    const old = this.oldWorkers(node.name, reply.old);
    const before = this.previous.get(node.name);
    const merged = mergeWorkerSamples(
      current,
      old,
      before?.workers,
      before === undefined ? 0 : (at.getTime() - before.at) / 1000,
    );
    const samples = withConnectionCaps(merged.samples, connectionCaps(reply.map));
    this.previous.set(node.name, { at: at.getTime(), workers: merged.workers });
    return this.save(node, at, samples);
  }

  /** One NGINX node's reply as samples (rates against its previous read), stored like HAProxy's. */
  private async storeNginx(
    node: ProxyNode,
    reply: (NodeRead & { kind: 'nginx' })['reply'],
    at: Date,
  ): Promise<{ result: NodePoll; samples: StatSample[] }> {
    let samples: StatSample[];
    try {
      if (!reply.ok) throw new Error(reply.error);
      const before = this.nginxPrevious.get(node.name);
      const read = nginxSamples(
        reply.stats,
        before?.reading,
        before === undefined ? 0 : (at.getTime() - before.at) / 1000,
        upstreamName,
      );
      samples = read.samples;
      this.nginxPrevious.set(node.name, { at: at.getTime(), reading: read.reading });
    } catch (err) {
      const error = `cannot read stats: ${err instanceof Error ? err.message : String(err)}`;
      this.outcome(node.name, error);
      return { result: { node: node.name, ok: false, error }, samples: [] };
    }
    return this.save(node, at, samples);
  }

  /** Stores one node's samples and their rollups in one transaction. */
  private async save(
    node: ProxyNode,
    at: Date,
    samples: StatSample[],
  ): Promise<{ result: NodePoll; samples: StatSample[] }> {
    try {
      await this.deps.db.transaction().execute(async (trx) => {
        await insertSamples(trx, node.name, at, samples);
        await upsertRollups(trx, node.name, rollupIncrements(samples, at));
      });
    } catch (err) {
      const error = `cannot store stats: ${err instanceof Error ? err.message : String(err)}`;
      this.outcome(node.name, error);
      return { result: { node: node.name, ok: false, error }, samples };
    }
    this.outcome(node.name, null);
    return { result: { node: node.name, ok: true, samples: samples.length }, samples };
  }

  /**
   * The old workers' samples, or none (the current worker's alone, as without a master CLI) when
   * the master did not answer or a reply does not parse; logged when that starts and stops.
   */
  private oldWorkers(node: string, replies: OldWorkerReplies | null): WorkerSamples[] {
    if (replies === null) return [];
    let old: WorkerSamples[] = [];
    let error: string | null = null;
    try {
      if (!replies.ok) throw new Error(replies.error);
      old = replies.workers.map((w) => ({ pid: w.pid, samples: toSamples(parseShowStat(w.output), proxyOwner) }));
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      old = [];
    }
    const last = this.masterFailing.get(node);
    this.masterFailing.set(node, error);
    if (error !== null && error !== last) {
      this.deps.logger.warn(
        { node, error },
        "stats poll cannot read a node's old workers through its master CLI; its samples count the current worker alone",
      );
    } else if (error === null && last !== undefined && last !== null) {
      this.deps.logger.info({ node }, "stats poll reads a node's old workers through its master CLI again");
    }
    return old;
  }

  /** Logs a node's failure when it starts (or its reason changes) and its recovery, not every tick. */
  private outcome(node: string, error: string | null): void {
    const last = this.failing.get(node);
    this.failing.set(node, error);
    if (error !== null && error !== last)
      this.deps.logger.warn({ node, error }, 'stats poll of a node failed; its samples are missing until it answers');
    else if (error === null && last !== undefined && last !== null)
      this.deps.logger.info({ node }, 'stats poll of a node works again');
  }

  /** Each tenant's sessions and request rate summed over the nodes just read. */
  private publishUsage(samples: readonly StatSample[]): void {
    const gauge = this.deps.metrics?.tenantUsage;
    if (gauge === undefined) return;
    const usage = new Map<string, { connections: number; rps: number }>();
    for (const s of samples) {
      if (s.kind !== 'frontend') continue;
      const u = usage.get(s.tenant) ?? { connections: 0, rps: 0 };
      u.connections += s.sessions;
      u.rps += s.rates?.requests ?? 0;
      usage.set(s.tenant, u);
    }
    gauge.reset();
    for (const [tenant, u] of usage) {
      gauge.set({ tenant, resource: 'connections' }, u.connections);
      gauge.set({ tenant, resource: 'requests_per_second' }, u.rps);
    }
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }
}

/** The PID in the worker's `show info`; null when it was not asked or did not parse (rates then key by object alone). */
function workerPid(info: CommandResult | undefined | null): number | null {
  if (info === null || info === undefined || info.status !== 'ok') return null;
  try {
    return parseShowInfo(info.output).pid;
  } catch {
    return null;
  }
}
