import type { ProxyNode } from '../domain/node.js';
import type { Db } from '../db/connect.js';
import { allNodes } from '../db/node-repository.js';
import { currentRevision } from '../db/revision-repository.js';
import type { BackoffPolicy } from '../util/backoff.js';
import type { Logger } from '../logger.js';
import type { ConfigService } from '../services/config/config-service.js';
import { nodeSettingsOf } from '../services/config/node-settings.js';
import type { RuntimePlanner } from '../services/runtime-planner.js';
import type { NginxRuntimePlanner } from '../services/nginx-runtime-planner.js';
import { Semaphore } from '../util/semaphore.js';
import { NodeReconciler, type ReconcilerMetrics } from './node-reconciler.js';

export interface ReconcilerDeps {
  readonly db: Db;
  readonly configs: Pick<ConfigService, 'buildServed' | 'runtimeSnapshot'>;
  readonly runtime: Pick<RuntimePlanner, 'plan' | 'executor' | 'startObservation' | 'firstTarget'>;
  /** NGINX nodes' runtime channels; absent, NGINX nodes change by reload only. */
  readonly nginx?: Pick<NginxRuntimePlanner, 'plan' | 'channel' | 'startObservation'> | undefined;
  /** Committed revisions; each wakes every node. */
  readonly changes: {
    on(event: 'change', listener: (change: { readonly revision: number }) => void): unknown;
    off(event: 'change', listener: (change: { readonly revision: number }) => void): unknown;
    /** An agent reloaded this node: its runtime state may be older than what was pushed. */
    on(event: 'reloaded', listener: (node: string) => void): unknown;
    off(event: 'reloaded', listener: (node: string) => void): unknown;
    /** A node's agent could not bind some tenants' new listeners: they are held, its files change. */
    on(event: 'rebuild', listener: (node: string) => void): unknown;
    off(event: 'rebuild', listener: (node: string) => void): unknown;
  };
  /** Told which nodes still exist, so it can drop the Runtime API and runtime channel connections of the others. */
  readonly clients?: { retain(nodes: ReadonlySet<string>): void };
  readonly logger: Logger;
  readonly metrics?: ReconcilerMetrics | undefined;
}

export interface ReconcilerOptions {
  /** Safety-net pass over every node (ms), for changes no notification announced. */
  readonly intervalMs: number;
  /** Retry after a failed pass: capped exponential per node. */
  readonly backoff: BackoffPolicy;
  /** A pass that sent commands or left a drain running is followed by another this soon (ms). */
  readonly followUpMs?: number;
  /** Config builds (each runs the real validator) at once, across nodes. */
  readonly buildConcurrency?: number;
}

/**
 * Makes the fleet follow the desired state. Woken by committed writes (debounced, so a burst
 * gives one pass per node) and by a timer; every node is reconciled independently and
 * concurrently: its config is built and stored (agents fetch it), and a HAProxy node with a
 * Runtime API, or an NGINX node with a runtime channel, is observed, planned and pushed to,
 * without a reload. Start and stop it with the
 * process (or, later, with leadership).
 */
export class Reconciler {
  private readonly nodes = new Map<string, NodeReconciler>();
  private readonly builds: Semaphore;
  private ticker: NodeJS.Timeout | undefined;
  private listing: Promise<void> | null = null;
  /** A listing was asked for while one ran (it may have read the node list before the change). */
  private relist = false;
  /** That listing is to wake every node (the timer's). */
  private wakeAll = false;
  /** The highest revision the change feed announced. */
  private announced = 0;
  /** The settings each node's reconciler was last given: a listing wakes a node only when they moved. */
  private readonly settings = new Map<string, string>();
  private started = false;
  /** A stop in progress: a second stop() (leadership lost, then shutdown) waits for the same one. */
  private stopping: Promise<void> | null = null;
  private readonly onChange = (change: { readonly revision: number }) => this.wake(change.revision);
  private readonly onReloaded = (node: string) => this.nodes.get(node)?.reloaded();
  private readonly onRebuild = (node: string) => this.nodes.get(node)?.rebuild();

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly options: ReconcilerOptions,
  ) {
    this.builds = new Semaphore(options.buildConcurrency ?? 4);
  }

  /** True while this replica runs the reconciler (it is the leader). */
  get running(): boolean {
    return this.started;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.deps.changes.on('change', this.onChange);
    this.deps.changes.on('reloaded', this.onReloaded);
    this.deps.changes.on('rebuild', this.onRebuild);
    this.tick();
    void this.refresh(true);
  }

  async stop(): Promise<void> {
    if (!this.started) return this.stopping ?? undefined;
    this.started = false;
    this.stopping = this.stopNow().finally(() => (this.stopping = null));
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    this.deps.changes.off('change', this.onChange);
    this.deps.changes.off('reloaded', this.onReloaded);
    this.deps.changes.off('rebuild', this.onRebuild);
    clearTimeout(this.ticker);
    await this.listing;
    await Promise.all([...this.nodes.values()].map((n) => n.stop()));
    this.nodes.clear();
    this.settings.clear();
  }

  /**
   * Wakes every node for a committed revision, at once: no debounce window sits between a write
   * and its push. A burst still costs at most two passes per node, because a node woken during a
   * pass runs one more after it, and a commit announced twice (locally, then by NOTIFY) or
   * already loaded by a running pass costs none (NodeReconciler.wake).
   */
  wake(revision?: number): void {
    if (!this.started) return;
    // The same commit heard again (locally at COMMIT, then through NOTIFY): every node already knows it.
    if (revision !== undefined && revision <= this.announced) return;
    if (revision !== undefined) this.announced = revision;
    // Known nodes start at once; the listing (nodes come and go) follows and wakes new or changed ones.
    for (const node of this.nodes.values()) node.wake(revision);
    void this.refresh(revision === undefined);
  }

  /** Resolves once every node's current and queued passes have ended (tests, benchmarks). */
  async settled(): Promise<void> {
    await this.listing;
    await Promise.all([...this.nodes.values()].map((n) => n.idle()));
  }

  private tick(): void {
    this.ticker = setTimeout(() => {
      void this.refresh(true);
      if (this.started) this.tick();
    }, this.options.intervalMs);
    this.ticker.unref();
  }

  /**
   * Reads the node list (nodes come and go) and wakes new nodes and nodes whose settings moved;
   * `all` (the timer's safety net) wakes every node, each checking the current revision itself.
   * Asked for during a listing, one more follows it: that listing may predate the change.
   */
  private refresh(all: boolean): Promise<void> {
    if (this.listing !== null) {
      this.relist = true;
      this.wakeAll ||= all;
      return this.listing;
    }
    this.listing = this.refreshNow(all).finally(() => {
      this.listing = null;
      if (!this.relist || !this.started) return;
      const again = this.wakeAll;
      this.relist = false;
      this.wakeAll = false;
      void this.refresh(again);
    });
    return this.listing;
  }

  private async refreshNow(all: boolean): Promise<void> {
    let nodes: ProxyNode[];
    try {
      nodes = await allNodes(this.deps.db);
    } catch (err) {
      this.deps.logger.warn({ err }, 'reconciler cannot list nodes; the next tick retries');
      return;
    }
    if (!this.started) return;
    const names = new Set(nodes.map((n) => n.name));
    for (const [name, gone] of this.nodes) {
      if (names.has(name)) continue;
      this.nodes.delete(name);
      this.settings.delete(name);
      void gone.stop();
    }
    this.deps.clients?.retain(new Set(nodes.filter((n) => n.runtimeAddress !== null).map((n) => n.name)));
    for (const node of nodes) {
      // What a pass uses of the row; status columns move on every push and are no reason to wake.
      const settings = JSON.stringify(nodeSettingsOf(node));
      let reconciler = this.nodes.get(node.name);
      const moved = this.settings.get(node.name) !== settings;
      this.settings.set(node.name, settings);
      if (reconciler === undefined) {
        reconciler = new NodeReconciler(node, this.nodeDeps(), {
          backoff: this.options.backoff,
          followUpMs: this.options.followUpMs ?? 1_000,
        });
        this.nodes.set(node.name, reconciler);
      } else {
        reconciler.update(node);
      }
      // A change that moved nothing of the node was already announced to it by wake().
      if (all || moved) reconciler.wake();
    }
  }

  private nodeDeps() {
    return {
      db: this.deps.db,
      build: (node: string) => this.builds.run(() => this.deps.configs.buildServed(node)),
      runtimeSnapshot: (node: ProxyNode, atLeast?: number) =>
        this.deps.configs.runtimeSnapshot(nodeSettingsOf(node), atLeast),
      currentRevision: () => currentRevision(this.deps.db),
      runtime: this.deps.runtime,
      nginx: this.deps.nginx,
      logger: this.deps.logger,
      metrics: this.deps.metrics,
    };
  }
}
