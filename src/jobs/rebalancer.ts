import type { Logger } from '../logger.js';
import type { AllocationService } from '../services/allocation-service.js';
import type { PlacementService } from '../services/placement-service.js';

export interface RebalancerDeps {
  readonly allocations: Pick<AllocationService, 'plan' | 'apply'> & Partial<Pick<AllocationService, 'refreshMetrics'>>;
  /** Takes unhealthy nodes out of placement and brings them back; absent: placement follows writes only. */
  readonly placement?: Pick<PlacementService, 'healthPass'>;
  /** Committed revisions: tenant and node capacity changes come through here. */
  readonly changes: {
    on(event: 'change', listener: (e: { revision: number }) => void): unknown;
    off(event: 'change', listener: (e: { revision: number }) => void): unknown;
  };
  readonly logger: Logger;
}

export interface RebalancerOptions {
  /**
   * The longest time between two passes. With the stats poller on, a pass follows every poll
   * (`afterPoll`), so this only fires when polls stop (the poller off, or stuck).
   */
  readonly intervalMs: number;
  /** Writes within this window share one pass (ms). */
  readonly debounceMs?: number;
}

/** What one pass did: a job reports, it does not throw. */
export type RebalanceOutcome =
  | {
      readonly status: 'unchanged';
      readonly revision: number;
      readonly deferred: number;
      readonly placementMoves: number;
    }
  | {
      readonly status: 'applied';
      readonly revision: number;
      readonly applied: number;
      readonly deferred: number;
      readonly placementMoves: number;
    }
  | { readonly status: 'failed'; readonly error: string };

/**
 * Recomputes every tenant's caps right after each stats poll (fresh demand), after every
 * committed write (debounced; a tenant's or node's capacity may have changed), and at the latest
 * `intervalMs` after the previous pass; stores them when they moved: the commit
 * wakes the reconciler, which pushes them through the Runtime API. Each pass first checks node
 * health: a node that misses heartbeats or whose Runtime API push fails is taken out of placement
 * and its tenants re-placed, so the caps computed next already follow the move. Runs on the
 * leader only.
 */
export class Rebalancer {
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<RebalanceOutcome> | null = null;
  private again = false;
  private started = false;
  /**
   * The revision this job committed last: the database's notification of it does not wake the
   * job again. (The in-process event fires before apply returns; the pass it wakes finds nothing.)
   */
  private own = -1;
  /** When this replica started leading: heartbeats it could not have heard do not count against nodes. */
  private since = 0;
  /** The nodes last reported as kept in placement for lack of others. */
  private keptLogged = '';
  private readonly onChange = (e: { revision: number }) => {
    if (e.revision !== this.own) this.wake();
  };

  constructor(
    private readonly deps: RebalancerDeps,
    private readonly options: RebalancerOptions,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.since = Date.now();
    this.deps.changes.on('change', this.onChange);
    // The allocation gauge shows the stored caps from the start, not only after the first change.
    this.deps.allocations
      .refreshMetrics?.()
      .catch((err: unknown) => this.deps.logger.warn({ err }, 'cannot read allocations for metrics'));
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.started = false;
    this.deps.changes.off('change', this.onChange);
    clearTimeout(this.timer);
    clearTimeout(this.debounce);
    await this.running?.catch(() => undefined);
  }

  /** A pass now, on the samples the poller has just stored (a pass in flight is followed by one more). */
  afterPoll(): void {
    if (!this.started) return;
    void this.runOnce();
  }

  /** A pass soon (debounced). */
  wake(): void {
    if (!this.started || this.debounce !== undefined) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.runOnce();
    }, this.options.debounceMs ?? 200);
    this.debounce.unref();
  }

  /** One pass now; a pass requested while one runs follows it. */
  async runOnce(): Promise<RebalanceOutcome> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.pass().finally(() => {
      this.running = null;
      // Whatever started it, a pass re-arms the fallback timer: it fires only when nothing else runs passes.
      if (this.started) this.schedule(this.options.intervalMs);
      if (this.again && this.started) {
        this.again = false;
        void this.runOnce();
      }
    });
    return this.running;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.runOnce(), delayMs);
    this.timer.unref();
  }

  private async pass(): Promise<RebalanceOutcome> {
    try {
      const placementMoves = await this.checkNodeHealth();
      const plan = await this.deps.allocations.plan();
      const deferred = plan.changes.filter((c) => c.deferred !== null).length;
      if (!plan.pending) return { status: 'unchanged', revision: plan.revision, deferred, placementMoves };
      const result = await this.deps.allocations.apply(plan);
      if (!result.changed) return { status: 'unchanged', revision: result.revision, deferred, placementMoves };
      this.own = result.revision;
      const applied = result.items.filter((i) => i.status === 'applied');
      this.deps.logger.info(
        { revision: result.revision, applied: applied.length, deferred },
        'rebalanced: caps changed',
      );
      for (const c of applied)
        this.deps.logger.debug(
          { tenant: c.tenantId, node: c.node, dimension: c.dimension, from: c.from, to: c.to },
          c.detail,
        );
      return { status: 'applied', revision: result.revision, applied: applied.length, deferred, placementMoves };
    } catch (err) {
      // A conflict (someone applied first) or a database error: the next pass plans again.
      this.deps.logger.warn({ err }, 'rebalance pass failed; the next one retries');
      return { status: 'failed', error: (err as Error).message };
    }
  }

  /** Node health → placement; returns the replica moves it made. */
  private async checkNodeHealth(): Promise<number> {
    if (!this.deps.placement) return 0;
    const r = await this.deps.placement.healthPass(this.since);
    for (const e of r.excluded)
      this.deps.logger.warn(
        { node: e.node, reason: e.reason },
        'node taken out of placement; its tenants are re-placed',
      );
    for (const node of r.included) this.deps.logger.info({ node }, 'node healthy again; back in placement');
    // Said once when it starts, not on every pass while it lasts.
    const kept = r.keptForLackOfOthers.join(',');
    if (kept !== '' && kept !== this.keptLogged)
      this.deps.logger.warn(
        { nodes: r.keptForLackOfOthers },
        'nodes unhealthy, but so is every other node of their kind and group: kept in placement',
      );
    this.keptLogged = kept;
    if (r.revision !== null) this.own = r.revision;
    return r.moves;
  }
}
