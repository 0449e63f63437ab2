import type { ProxyNode } from '../domain/node.js';
import type { Db } from '../db/connect.js';
import type { BackoffPolicy } from '../fleet/backoff.js';
import type { Logger } from '../logger.js';
import { nodeSettings, type ConfigService } from '../services/config-service.js';
import { allNodes } from '../services/plan-service.js';
import type { RuntimePlanner } from '../services/runtime-planner.js';
import { Semaphore } from '../services/semaphore.js';
import { NodeReconciler, type ReconcilerMetrics } from './node-reconciler.js';

export interface ReconcilerDeps {
  readonly db: Db;
  readonly configs: Pick<ConfigService, 'buildServed' | 'runtimeSnapshot'>;
  readonly runtime: Pick<RuntimePlanner, 'plan' | 'executor'>;
  /** Committed revisions; each wakes every node (debounced). */
  readonly changes: {
    on(event: 'change', listener: () => void): unknown;
    off(event: 'change', listener: () => void): unknown;
  };
  /** Told which nodes still exist, so it can drop the Runtime API connections of the others. */
  readonly clients?: { retain(nodes: ReadonlySet<string>): void };
  readonly logger: Logger;
  readonly metrics?: ReconcilerMetrics | undefined;
}

export interface ReconcilerOptions {
  /** Safety-net pass over every node (ms), for changes no notification announced. */
  readonly intervalMs: number;
  /** Writes within this window share one pass per node (ms). */
  readonly debounceMs?: number;
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
 * Runtime API is observed, planned and pushed to, without a reload. Start and stop it with the
 * process (or, later, with leadership).
 */
export class Reconciler {
  private readonly nodes = new Map<string, NodeReconciler>();
  private readonly builds: Semaphore;
  private debounce: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private listing: Promise<void> | null = null;
  private started = false;
  /** A stop in progress: a second stop() (leadership lost, then shutdown) waits for the same one. */
  private stopping: Promise<void> | null = null;
  private readonly onChange = () => this.wake();

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
    this.tick();
    void this.refresh();
  }

  async stop(): Promise<void> {
    if (!this.started) return this.stopping ?? undefined;
    this.started = false;
    this.stopping = this.stopNow().finally(() => (this.stopping = null));
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    this.deps.changes.off('change', this.onChange);
    clearTimeout(this.debounce);
    clearTimeout(this.ticker);
    await this.listing;
    await Promise.all([...this.nodes.values()].map((n) => n.stop()));
    this.nodes.clear();
  }

  /** Wakes every node after the debounce window. */
  wake(): void {
    if (!this.started || this.debounce !== undefined) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      // Known nodes start at once; the listing (nodes come and go) follows and wakes any new one.
      for (const node of this.nodes.values()) node.wake();
      void this.refresh();
    }, this.options.debounceMs ?? 2);
    this.debounce.unref();
  }

  /** Resolves once every node's current and queued passes have ended (tests, benchmarks). */
  async settled(): Promise<void> {
    await this.listing;
    await Promise.all([...this.nodes.values()].map((n) => n.idle()));
  }

  private tick(): void {
    this.ticker = setTimeout(() => {
      void this.refresh();
      if (this.started) this.tick();
    }, this.options.intervalMs);
    this.ticker.unref();
  }

  /** Reads the node list (nodes come and go) and wakes each node. */
  private refresh(): Promise<void> {
    this.listing ??= this.refreshNow().finally(() => (this.listing = null));
    return this.listing;
  }

  private async refreshNow(): Promise<void> {
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
      void gone.stop();
    }
    this.deps.clients?.retain(new Set(nodes.filter((n) => n.runtimeAddress !== null).map((n) => n.name)));
    for (const node of nodes) {
      let reconciler = this.nodes.get(node.name);
      if (reconciler === undefined) {
        reconciler = new NodeReconciler(node, this.nodeDeps(), {
          backoff: this.options.backoff,
          followUpMs: this.options.followUpMs ?? 1_000,
        });
        this.nodes.set(node.name, reconciler);
      } else {
        reconciler.update(node);
      }
      reconciler.wake();
    }
  }

  private nodeDeps() {
    return {
      db: this.deps.db,
      build: (node: string) => this.builds.run(() => this.deps.configs.buildServed(node)),
      runtimeSnapshot: (node: ProxyNode) => this.deps.configs.runtimeSnapshot(nodeSettings(node)),
      currentRevision: async () => {
        const row = await this.deps.db.selectFrom('revision_counter').select('revision').where('id', '=', 1).executeTakeFirstOrThrow();
        return Number(row.revision);
      },
      runtime: this.deps.runtime,
      logger: this.deps.logger,
      metrics: this.deps.metrics,
    };
  }
}
