import type { MemberHealth } from '../domain/member-health.js';
import { memberHealth } from '../domain/member-health.js';
import { nginxMemberHealth } from '../domain/nginx-member-health.js';
import type { NginxRuntimeState, StatePush } from '../domain/nginx-runtime.js';
import { describePushFailures, judgePush, type NginxPushOutcome } from '../domain/nginx-runtime-plan.js';
import type { ProxyNode } from '../domain/node.js';
import type { RuntimePlan } from '../domain/runtime-plan.js';
import type { NodeSnapshot } from '../domain/snapshot.js';
import type { Db } from '../db/connect.js';
import { nodeHealth, replaceBackendsHealth, replaceNodeHealth, storedHealth } from '../db/member-health-repository.js';
import { recordRuntimePush, requestReload } from '../db/node-repository.js';
import { backoffDelay, type BackoffPolicy } from '../util/backoff.js';
import { executeSendable } from '../fleet/runtime-api/execute-sendable.js';
import { observationTarget, type ObservationTarget } from '../fleet/observe-runtime.js';
import type { RuntimeCommand } from '../fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult } from '../fleet/runtime-api/runtime-executor.js';
import type { Logger } from '../logger.js';
import type { ServedConfig } from '../services/config/node-config.js';
import type { EarlyObservation, PassScope, RuntimePlanner } from '../services/runtime-planner.js';
import type { NginxObservation, NginxRuntimePlanner } from '../services/nginx-runtime-planner.js';
import { changedTenants } from './pass-scope.js';
import { SerialLane, type LaneOutcome } from '../util/serial-lane.js';

/** What one node's passes need; the Reconciler hands the same to every node. */
export interface NodeReconcilerDeps {
  readonly db: Db;
  /** Builds (renders, validates, stores) the node's config; builds are rationed across nodes by the caller. */
  build(node: string): Promise<ServedConfig>;
  /**
   * What the node's Runtime API should hold, without waiting for a build (ConfigService.runtimeSnapshot),
   * at revision `atLeast` or later when given (a committed revision someone announced).
   */
  runtimeSnapshot(node: ProxyNode, atLeast?: number): Promise<NodeSnapshot>;
  currentRevision(): Promise<number>;
  readonly runtime: Pick<RuntimePlanner, 'plan' | 'executor' | 'startObservation' | 'firstTarget'>;
  /** NGINX nodes' runtime channels; absent, an NGINX node changes by reload only, runtime address or not. */
  readonly nginx?: Pick<NginxRuntimePlanner, 'plan' | 'channel' | 'startObservation'> | undefined;
  readonly logger: Logger;
  readonly metrics?: ReconcilerMetrics | undefined;
}

/** The metrics a reconciler feeds (prom-client's Histogram and Counter satisfy it). */
export interface ReconcilerMetrics {
  readonly reconcileDuration: { observe(labels: { node: string }, seconds: number): void };
  readonly runtimeCommands: { inc(labels: { node: string; outcome: string }, value: number): void };
}

export interface NodeReconcilerOptions {
  readonly backoff: BackoffPolicy;
  /** A pass that sent commands or left a removal half-way is followed by another this soon (ms). */
  readonly followUpMs: number;
  /** A push whose node has not answered its read within this long no longer holds back the node's config build (ms). */
  readonly buildAfterPushMs?: number;
  /** The shortest time between the starts of two builds of the node (ms); writes in between share the next. */
  readonly minBuildIntervalMs?: number;
  /** An NGINX node's member health is read (its channel's stats) at most this often (ms); default 1 s. */
  readonly nginxHealthIntervalMs?: number;
}

/** At most five builds a second per node, whatever the write rate. */
const MIN_BUILD_INTERVAL_MS = 200;
/** Builds start at least this many times their own duration apart (a third of the time at most). */
const BUILD_SHARE_INVERSE = 3;

/** A node's state reads in milliseconds (10,000 servers: ~20 ms): not read by then, it is not answering. */
const BUILD_AFTER_PUSH_MS = 300;

/** How a pass ended: `followUp` asks for another soon (a drain in progress, or commands to verify). */
type PassOutcome = { readonly ok: true; readonly followUp: boolean } | { readonly ok: false; readonly error: string };

/**
 * A pass's runtime half for one proxy kind: the node's read, begun before the snapshot it will be
 * compared with has loaded (`observed`: whether the node answered), and the push from that snapshot.
 */
interface RuntimeStep {
  readonly observed: Promise<boolean>;
  push(snapshot: NodeSnapshot): Promise<PassOutcome>;
}

/** Stats of a large NGINX node are megabytes to build and read: member health is not read on every pass of a write stream. */
const NGINX_HEALTH_INTERVAL_MS = 1_000;

/**
 * One node's reconcile loop. Passes never overlap (a wake during a pass runs one more after it)
 * and are idempotent: each re-plans from what the proxy holds now, so repeating one is harmless.
 * A failed pass retries with capped exponential backoff on its own timer; other nodes never wait.
 */
export class NodeReconciler {
  /** Runtime passes, one at a time; a pass that left work under way is followed by another. */
  private readonly passes: SerialLane;
  /** The build lane: one build at a time, coalesced, spaced, never in the way of a push. */
  private readonly builds: SerialLane;
  private served: ServedConfig | null = null;
  private recorded: { revision: number | null; pending: number; error: string | null } | null = null;
  private healthKey: string | null = null;
  /** What scoped passes last stored, by their backends: a follow-up that read the same writes nothing. */
  private readonly scopedHealth = new Map<string, string>();
  private lastSent = '';
  /** When an NGINX node's member health was last read, and the last error reading it (logged once). */
  private nginxHealthAt = 0;
  private nginxHealthError: string | null = null;
  /** The deferred cap raises a reload was last requested for (see requestReloadFor). */
  private reloadRequestedFor: string | null = null;
  /** The highest committed revision announced to this node (change events carry it). */
  private announced = 0;
  /** The revision the last successful pass brought the node to (or found it at): announcements up to it need no pass. */
  private covered = 0;
  /** A wake without a revision (timer, retry, new settings) asks for a pass that checks the database itself. */
  private forced = false;
  /** The files the last pass read: the next starts reading them while its snapshot loads. */
  private target: ObservationTarget | null = null;
  /**
   * What the last successful pass planned from: the next pass reads and compares only the tenants
   * that changed since (see pass-scope.ts), unless `wholeNext` asks for the whole node.
   */
  private planned: NodeSnapshot | null = null;
  /** The next pass reads the whole node: the first one, after a failure, a reload, a timer or new settings. */
  private wholeNext = true;
  /** The tenants a scoped pass pushed to, which its follow-up checks again. */
  private followUp: ReadonlySet<string> | null = null;
  /** When a tenant held on the node is due to be tried again at its current state: a build then. */
  private retryHeldTimer: NodeJS.Timeout | undefined;

  constructor(
    private node: ProxyNode,
    private readonly deps: NodeReconcilerDeps,
    private readonly options: NodeReconcilerOptions,
  ) {
    this.passes = new SerialLane({
      run: () => this.timedPass(),
      // A pass that reflects every announcement already has nothing to do.
      skip: () => this.reflectsAnnouncements(),
      retryDelay: (failures) => backoffDelay(options.backoff, failures),
      onFailure: (error, retryMs) =>
        deps.logger.warn({ node: this.node.name, error: message(error), retryMs }, 'reconcile pass failed; retrying'),
      // Retries and follow-ups check the database themselves.
      onTimer: () => {
        this.forced = true;
      },
    });
    this.builds = new SerialLane({
      run: () => this.build(),
      retryDelay: (failures) => backoffDelay(options.backoff, failures),
      onFailure: (error, retryMs) =>
        deps.logger.warn({ node: this.node.name, error: message(error), retryMs }, 'config build failed; retrying'),
      // Under a stream of writes builds follow each other at most every minBuildIntervalMs, each
      // taking every write committed before it starts: a bounded number of builds per second
      // however many writes, and the runtime pushes (which make changes live) keep the CPU.
      // A build also never takes more than a third of the node's time: on a large node under a
      // stream of structural writes (each build then stores the node's structure anew) the
      // spacing grows with the build, so writes keep the CPU and the database.
      spacing: (lastBuildMs) =>
        Math.max(options.minBuildIntervalMs ?? MIN_BUILD_INTERVAL_MS, BUILD_SHARE_INVERSE * lastBuildMs),
    });
    // Every outcome has a series from the start, so a rate() over it works before the first push.
    if (this.hasRuntime(node)) {
      for (const outcome of RUNTIME_OUTCOMES)
        deps.metrics?.runtimeCommands.inc({ node: node.name, outcome: outcome.replace('-', '_') }, 0);
    }
  }

  /** A new version of the node's row (settings changed): used from the next pass. */
  update(node: ProxyNode): void {
    this.node = node;
  }

  /**
   * Asks for a pass. With `revision` (a commit the change feed announced), the pass trusts it
   * instead of asking the database for the current revision, and an announcement the node already
   * reflects (the same commit heard twice: locally, then through NOTIFY) asks for nothing. While
   * backing off after a failure the push waits for its retry timer, but a new revision still gets
   * the node's config built: the agent fetches it whether or not the Runtime API answers, and a
   * node whose proxy is down must not show the old build as what it should run.
   */
  wake(revision?: number): void {
    if (this.stopped) return;
    if (this.passes.failing) {
      if (revision !== undefined && revision > Math.max(this.covered, this.announced)) {
        this.announced = revision;
        this.builds.request();
      }
      return;
    }
    if (revision === undefined) {
      // A timer, a reload or new settings: what the node holds may have moved by itself.
      this.forced = true;
      this.wholeNext = true;
    } else if (revision <= Math.max(this.covered, this.announced)) return;
    else this.announced = revision;
    this.passes.request();
  }

  /**
   * The node's agent reloaded it: the new worker holds what its files say, which may be older than
   * what passes pushed since they were built, so the next pass may send the same commands as the
   * last one. That is the worker catching up, not a proxy that drops what it acknowledged: the
   * pass reads the whole node and its commands are checked by a follow-up as any others.
   */
  reloaded(): void {
    this.lastSent = '';
    this.wake();
  }

  /**
   * Builds the node's config again though the desired state did not move: the tenants held on it
   * changed (its agent could not bind some tenant's new listener), so its files do.
   */
  rebuild(): void {
    if (!this.stopped) this.builds.request();
  }

  /** Stops scheduling; resolves when a pass and a build in flight have ended. */
  async stop(): Promise<void> {
    const passes = this.passes.stop();
    const builds = this.builds.stop();
    clearTimeout(this.retryHeldTimer);
    await passes;
    await builds;
  }

  /** Resolves when no pass or build is running or queued (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.passes.busy || this.builds.busy) {
      await this.passes.settled();
      await this.builds.settled();
    }
  }

  /** Stopped: wakes, builds and timers ask for nothing more. */
  private get stopped(): boolean {
    return this.passes.isStopped;
  }

  /** One pass, timed; how it ended, as the pass lane takes it. */
  private async timedPass(): Promise<LaneOutcome> {
    const started = Date.now();
    const outcome = await this.pass().catch((error: unknown): PassOutcome => ({ ok: false, error: message(error) }));
    this.deps.metrics?.reconcileDuration.observe({ node: this.node.name }, (Date.now() - started) / 1000);
    if (!outcome.ok) {
      // What the failed pass sent may have half-landed: its retry reads everything.
      this.wholeNext = true;
      this.followUp = null;
      return outcome;
    }
    return { ok: true, followUpMs: outcome.followUp ? this.options.followUpMs : undefined };
  }

  /**
   * True when nothing asks for a pass: every commit announced while the last one ran was already
   * in the state it loaded (a burst of writes landing before its load), and no forced pass waits.
   */
  private reflectsAnnouncements(): boolean {
    return !this.forced && this.covered > 0 && this.announced <= this.covered;
  }

  /**
   * One pass. When the desired state moved, a config build (renderer, real validator, store: what
   * the agent fetches) is started in its own lane, and the runtime push goes ahead at once from a
   * snapshot that needs no validation, so a weight change is live in milliseconds and a slow
   * `haproxy -c` (seconds on a large node) never delays the next push. A pass that pushed from such
   * a snapshot is followed by one more, which plans from the validated result.
   */
  private async pass(): Promise<PassOutcome> {
    const node = this.node;
    const target = await this.targetRevision();
    const stale = this.served === null || this.served.config.revision < target;
    // Nodes without a Runtime API or runtime channel change by reload only: the build is all.
    const address = node.runtimeAddress;
    if (address === null || !this.hasRuntime(node)) {
      if (stale) this.builds.request();
      this.covered = Math.max(this.covered, target);
      return { ok: true, followUp: false };
    }
    // The build waits for the push (below), but not for a node that does not answer: a push to a
    // proxy that is down can spend seconds in connect backoff, and the agent, which needs no
    // Runtime API, would wait for its files all that time (and status would compare the node with
    // its previous build). Unless the node's state has been read by then, the build starts anyway.
    let buildStarted = false;
    const buildAnyway = stale
      ? setTimeout(() => {
          buildStarted = true;
          this.builds.request();
        }, this.options.buildAfterPushMs ?? BUILD_AFTER_PUSH_MS)
      : undefined;
    buildAnyway?.unref();
    try {
      const answered = () => clearTimeout(buildAnyway);
      if (node.kind === 'nginx') {
        // The node is read while the snapshot loads: two round trips in the time of one.
        const step = this.nginxStep(node, address);
        void step.observed.then(
          (ok) => ok && answered(),
          () => undefined,
        );
        const snapshot = stale ? await this.deps.runtimeSnapshot(node, target) : this.served!.snapshot;
        const pushed = await step.push(snapshot);
        if (pushed.ok) this.covered = Math.max(this.covered, snapshot.revision);
        return pushed.ok && stale ? { ok: true, followUp: true } : pushed;
      }
      const started = performance.now();
      const scoped = !this.wholeNext && this.planned !== null;
      // A whole read starts now, while the snapshot loads (two round trips in the time of one); a
      // pass for a few tenants reads them once the snapshot says which (one small batch).
      const early = scoped ? undefined : this.startWholeRead(node, address);
      // A node that answers gets its push at full speed, and the build after it (a 10,000-command push can outlast the timer).
      void early?.observation.then(
        (o) => o.ok && answered(),
        () => undefined,
      );
      const snapshot = stale ? await this.deps.runtimeSnapshot(node, target) : this.served!.snapshot;
      const change = scoped ? changedTenants(this.planned!, snapshot, this.followUp) : 'whole';
      const scope = change === 'whole' ? undefined : change;
      const pushed =
        scope?.tenants.size === 0
          ? { ok: true as const, followUp: false }
          : await this.push(node, address, snapshot, { early, scope, answered }, started);
      if (!pushed.ok) return pushed;
      this.covered = Math.max(this.covered, snapshot.revision);
      this.planned = snapshot;
      // A whole pass that left work under way is checked by another whole one; a scoped one by its scope.
      this.wholeNext = scope === undefined && pushed.followUp;
      this.followUp = scope !== undefined && pushed.followUp ? scope.tenants : null;
      return stale ? { ok: true, followUp: true } : pushed;
    } finally {
      // After the push, not alongside it: the validator would compete with it for the CPU.
      clearTimeout(buildAnyway);
      if (stale && !buildStarted) this.builds.request();
    }
  }

  /** Whether the node's runtime state is pushed (HAProxy's Runtime API, NGINX's runtime channel) rather than reloaded. */
  private hasRuntime(node: ProxyNode): boolean {
    return node.runtimeAddress !== null && (node.kind === 'haproxy' || this.deps.nginx !== undefined);
  }

  /** Starts reading the whole node (the files the last whole pass read, or a first guess). */
  private startWholeRead(node: ProxyNode, address: { host: string; port: number }): EarlyObservation {
    return this.deps.runtime.startObservation(
      node.name,
      address,
      this.target ?? this.deps.runtime.firstTarget(node.configDir),
    );
  }

  private nginxStep(node: ProxyNode, address: { host: string; port: number }): RuntimeStep {
    const early = this.deps.nginx!.startObservation(node.name, address);
    return {
      observed: early.then((o) => o.ok),
      push: (snapshot) => this.pushNginx(node, address, snapshot, early),
    };
  }

  /**
   * The revision this pass must reach. An announced commit is trusted as is: it saves a database
   * round trip on the way from a write to its push. Forced passes (timer, follow-up, retry) ask
   * the database, the safety net for announcements that never came.
   */
  private async targetRevision(): Promise<number> {
    const forced = this.forced || this.announced === 0;
    this.forced = false;
    if (!forced) return this.announced;
    const current = await this.deps.currentRevision();
    this.announced = Math.max(this.announced, current);
    return this.announced;
  }

  /** One build of the node's config (rendered, validated, stored): what the agent fetches and passes plan from. */
  private async build(): Promise<LaneOutcome> {
    this.served = await this.deps.build(this.node.name);
    this.scheduleHeldRetry(this.served.retryHeldAt);
    return { ok: true };
  }

  private scheduleHeldRetry(at: number | null | undefined): void {
    clearTimeout(this.retryHeldTimer);
    if (at === null || at === undefined || this.stopped) return;
    this.retryHeldTimer = setTimeout(() => this.builds.request(), Math.max(0, at - Date.now()));
    this.retryHeldTimer.unref();
  }

  /**
   * Observes the node (whole, or the tenants of `scope`), plans from `snapshot`, sends the
   * commands, records the outcome and the members' health.
   */
  private async push(
    node: ProxyNode,
    address: { host: string; port: number },
    snapshot: NodeSnapshot,
    read: { early?: EarlyObservation | undefined; scope?: PassScope | undefined; answered?: () => void } = {},
    started = performance.now(),
  ): Promise<PassOutcome> {
    const { early, scope } = read;
    const loaded = performance.now();
    const {
      desired,
      observation,
      plan,
      read: scopeRead,
    } = await this.deps.runtime.plan(node.name, address, snapshot, {
      early,
      scope,
    });
    const planned = performance.now();
    if (scope === undefined) this.target = observationTarget(desired);
    if (!observation.ok || plan === null) {
      const error = `cannot read the node's state: ${observation.ok ? 'no plan' : observation.error}`;
      await this.record(node, { revision: null, pending: this.recorded?.pending ?? 0, error, sent: 0, failed: 0 });
      return { ok: false, error };
    }
    read.answered?.();
    await this.requestReloadFor(node.name, plan.deferredCaps);
    const results =
      plan.commands.length === 0
        ? []
        : await executeSendable(this.deps.runtime.executor(node.name, address), plan.commands);
    if (results.length > 0) {
      const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
      const sent = performance.now();
      this.deps.logger.debug(
        {
          node: node.name,
          revision: snapshot.revision,
          commands: results.length,
          first: results.slice(0, 5).map((r) => r.command.line),
          scope: scope === undefined ? 'whole' : scope.tenants.size,
          snapshotMs: ms(started, loaded),
          planMs: ms(loaded, planned),
          sendMs: ms(planned, sent),
        },
        'runtime commands pushed',
      );
    }
    // Health is bookkeeping: stored after the commands went out, never in the way of a change.
    const health = memberHealth(desired, observation.observed);
    if (scopeRead === undefined) await this.saveHealth(node.name, health);
    else await this.saveScopedHealth(node.name, scopeRead.backends, health);
    const unfinished = results.filter((r) => r.status !== 'ok');
    // HAProxy 2.6 refuses `del server` while idle keep-alive connections linger (purged within
    // seconds): the removal is still under way, not failing, and the follow-up pass retries it.
    const waiting = unfinished.filter(stillAttached);
    const failed = unfinished.filter((r) => !stillAttached(r));
    this.count(node.name, results);
    const pending = failed.length + waiting.length + plan.inProgress.length;
    const error = failed.length === 0 ? null : describeFailures(failed);
    await this.record(node, {
      revision: pending === 0 && settled(snapshot) ? snapshot.revision : null,
      pending,
      error,
      sent: results.length,
      failed: failed.length,
    });
    if (error !== null) return { ok: false, error };
    // Commands that succeeded are checked by one more pass; the same ones again means the proxy does
    // not keep what it acknowledged, and hammering it would not help: the timer takes over then.
    const sent = plan.commands.map((c) => c.line).join('\n');
    const repeating = sent !== '' && sent === this.lastSent;
    if (repeating) {
      const first = plan.commands.slice(0, 5).map((c) => c.line);
      this.deps.logger.warn(
        { node: node.name, commands: plan.commands.length, first },
        'runtime state does not converge: the same commands were planned twice',
      );
    }
    this.lastSent = sent;
    return { ok: true, followUp: plan.inProgress.length + waiting.length > 0 || (results.length > 0 && !repeating) };
  }

  /**
   * Cap raises the Runtime API cannot make on a full frontend (HAProxy 2.6 aborts) go out by a
   * reload: once per new set of them, the node's reload generation goes up and its config is
   * rebuilt, which gives it a new structural hash; the agent reloads and the new worker starts
   * with the caps the files carry. The same set deferred again asks for nothing more.
   */
  private async requestReloadFor(node: string, deferred: RuntimePlan<RuntimeCommand>['deferredCaps']): Promise<void> {
    const key = deferred.map((d) => `${d.frontend}=${d.maxconn}`).join(',');
    if (key === '' || key === this.reloadRequestedFor) {
      if (key === '') this.reloadRequestedFor = null;
      return;
    }
    const reason = `raise ${deferred.map((d) => `${d.frontend} to ${d.maxconn}`).join(', ')}: the frontend is full, and HAProxy 2.6 cannot raise a full frontend's cap at runtime`;
    const generation = await requestReload(this.deps.db, node, reason);
    this.reloadRequestedFor = key;
    this.deps.logger.info({ node, generation, reason }, 'reload requested');
    this.builds.request();
  }

  /** Records the push on the node's row, skipping passes that changed nothing worth a write. */
  private async record(
    node: ProxyNode,
    p: { revision: number | null; pending: number; error: string | null; sent: number; failed: number },
  ): Promise<void> {
    const last = this.recorded;
    const same =
      last !== null &&
      p.sent === 0 &&
      p.error === last.error &&
      p.pending === last.pending &&
      (p.revision === null || p.revision === last.revision);
    if (same) return;
    await recordRuntimePush(this.deps.db, node.name, { ...p, at: new Date() });
    this.recorded = { revision: p.revision ?? last?.revision ?? null, pending: p.pending, error: p.error };
  }

  private async saveHealth(node: string, entries: MemberHealth[]): Promise<void> {
    const key = healthKey(entries);
    if (key === this.healthKey) return;
    try {
      // This reconciler's first pass (a restart, a new leader): what is stored may be this already,
      // and a large node's rows cost far more to rewrite than to read.
      if (this.healthKey === null && healthKey(await nodeHealth(this.deps.db, node)) === key) {
        this.healthKey = key;
        return;
      }
      await this.deps.db.transaction().execute((trx) => replaceNodeHealth(trx, node, entries, new Date()));
      this.healthKey = key;
    } catch (error) {
      // The node may have been deleted since this pass began; its rows went with it.
      this.deps.logger.warn({ node, err: error }, 'could not store member health');
    }
  }

  /**
   * The health of a scoped pass's backends (those its tenants have, or had): their stored rows
   * become exactly what was read, the node's other rows stay. The next whole pass compares the
   * node's rows with the database again (a scoped write makes the remembered key stale).
   */
  private async saveScopedHealth(node: string, backends: readonly string[], entries: MemberHealth[]): Promise<void> {
    const key = healthKey(entries);
    const scopeKey = backends.join(',');
    if (this.scopedHealth.get(scopeKey) === key) return;
    try {
      await this.deps.db
        .transaction()
        .execute((trx) => replaceBackendsHealth(trx, node, [...backends], entries, new Date()));
      this.scopedHealth.set(scopeKey, key);
      if (this.scopedHealth.size > SCOPED_HEALTH_KEPT) this.scopedHealth.clear();
      this.healthKey = null;
    } catch (error) {
      this.deps.logger.warn({ node, err: error }, 'could not store member health');
    }
  }

  private count(node: string, results: readonly CommandResult[]): void {
    const counts = { ok: 0, error: 0, 'not-executed': 0 };
    for (const r of results) counts[r.status] += 1;
    this.countOutcomes(node, counts);
  }

  private countOutcomes(node: string, counts: Record<(typeof RUNTIME_OUTCOMES)[number], number>): void {
    if (this.deps.metrics === undefined) return;
    for (const outcome of RUNTIME_OUTCOMES) {
      const n = counts[outcome];
      if (n > 0) this.deps.metrics.runtimeCommands.inc({ node, outcome: outcome.replace('-', '_') }, n);
    }
  }

  /**
   * An NGINX node's pass: reads what its runtime channel holds (hashes per entry), pushes the
   * changed and removed entries in one partial push, counts each entry as HAProxy's commands are
   * counted (ok; error: the node could not store it; not executed: refused as stale, or the push
   * never got an answer), records the outcome on the node and, at most once a second, its members'
   * health. Entries that failed are pushed again by the retry: each pass plans from what the node holds.
   */
  private async pushNginx(
    node: ProxyNode,
    address: { host: string; port: number },
    snapshot: NodeSnapshot,
    early: Promise<NginxObservation>,
  ): Promise<PassOutcome> {
    const nginx = this.deps.nginx!;
    const { watched, observation, plan } = await nginx.plan(node.name, address, snapshot, {
      early,
      appliedRevision: node.appliedRevision,
    });
    if (!observation.ok || plan === null) {
      const error = `cannot read the node's runtime channel: ${observation.ok ? 'no plan' : observation.error}`;
      await this.record(node, { revision: null, pending: this.recorded?.pending ?? 0, error, sent: 0, failed: 0 });
      return { ok: false, error };
    }
    let outcome: NginxPushOutcome = { sent: 0, ok: 0, stale: [], failed: [] };
    let unanswered = 0;
    let error: string | null = null;
    if (plan.push !== null) {
      const started = performance.now();
      try {
        outcome = judgePush(plan, await nginx.channel(node.name, address).push(plan.push));
        error = describePushFailures(outcome.failed);
      } catch (e) {
        unanswered = plan.changes.length;
        outcome = { sent: unanswered, ok: 0, stale: [], failed: [] };
        error = `push of ${unanswered} runtime entries failed: ${message(e)}`;
      }
      this.deps.logger.debug(
        {
          node: node.name,
          revision: snapshot.revision,
          entries: outcome.sent,
          stale: outcome.stale.length,
          failed: outcome.failed.length,
          sendMs: Math.round((performance.now() - started) * 10) / 10,
        },
        'runtime entries pushed',
      );
    }
    this.countOutcomes(node.name, {
      ok: outcome.ok,
      error: outcome.failed.length,
      'not-executed': outcome.stale.length + unanswered,
    });
    const pending = outcome.failed.length + unanswered;
    await this.record(node, {
      revision: pending === 0 && settled(snapshot) ? snapshot.revision : null,
      pending,
      error,
      sent: outcome.sent,
      failed: outcome.failed.length + unanswered,
    });
    // Health is bookkeeping: read after the push, never in the way of a change.
    if (unanswered === 0) await this.saveNginxHealth(node.name, address, watched);
    if (error !== null) return { ok: false, error };
    // A push is checked by one more pass; the same push again means the node does not keep what
    // it acknowledged, and hammering it would not help: the timer takes over then.
    const sent = plan.push === null ? '' : pushKey(plan.push);
    const repeating = sent !== '' && sent === this.lastSent;
    if (repeating)
      this.deps.logger.warn(
        { node: node.name, entries: plan.changes.length, first: plan.changes.slice(0, 5) },
        'runtime state does not converge: the same entries were planned twice',
      );
    this.lastSent = sent;
    return { ok: true, followUp: (outcome.sent > 0 && !repeating) || outcome.stale.length > 0 };
  }

  /** Reads the node's peers' health from its channel's stats, at most once per interval, and stores it as HAProxy's is. */
  private async saveNginxHealth(
    node: string,
    address: { host: string; port: number },
    watched: () => NginxRuntimeState,
  ): Promise<void> {
    const now = Date.now();
    if (now - this.nginxHealthAt < (this.options.nginxHealthIntervalMs ?? NGINX_HEALTH_INTERVAL_MS)) return;
    this.nginxHealthAt = now;
    let entries: MemberHealth[];
    try {
      entries = nginxMemberHealth(watched(), await this.deps.nginx!.channel(node, address).stats());
      this.nginxHealthError = null;
    } catch (error) {
      // The push went through; health waits for the next read. Said once, not on every pass.
      if (message(error) !== this.nginxHealthError)
        this.deps.logger.warn({ node, error: message(error) }, 'cannot read member health from the runtime channel');
      this.nginxHealthError = message(error);
      return;
    }
    await this.saveHealth(node, entries);
  }
}

const RUNTIME_OUTCOMES = ['ok', 'error', 'not-executed'] as const;

/** No tenant of the snapshot awaits validation: a pass that brought the node to it brought it to its revision. */
function settled(snapshot: NodeSnapshot): boolean {
  return snapshot.unsettled === undefined || snapshot.unsettled.length === 0;
}

/** Scoped health keys remembered (one per distinct scope, most often a single tenant's backends). */
const SCOPED_HEALTH_KEPT = 1024;

/** Entries as stored, in one order: equal keys mean the stored rows need no write. */
function healthKey(entries: readonly MemberHealth[]): string {
  const sorted = entries
    .map(storedHealth)
    .sort((a, b) =>
      a.backend < b.backend ? -1 : a.backend > b.backend ? 1 : a.member < b.member ? -1 : a.member > b.member ? 1 : 0,
    );
  return JSON.stringify(sorted);
}

/** The entries of a push and their hashes: the same key twice means the node did not keep the first. */
function pushKey(push: StatePush): string {
  const set = (entries: Readonly<Record<string, { hash: string }>>) =>
    Object.entries(entries).map(([name, e]) => `${name}=${e.hash}`);
  return [
    ...set(push.upstreams),
    '|',
    ...set(push.caps),
    '|',
    ...(push.removed?.upstreams ?? []),
    '|',
    ...(push.removed?.caps ?? []),
  ].join(',');
}

function stillAttached(result: CommandResult): boolean {
  return (
    result.status === 'error' &&
    result.command.kind === 'del-server' &&
    /still has connections attached/i.test(result.message)
  );
}

function describeFailures(failed: readonly CommandResult[]): string {
  const first = failed[0]!;
  const detail = first.status === 'ok' ? '' : first.message;
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : '';
  return `${first.command.line}: ${detail}${more}`.slice(0, 2000);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
