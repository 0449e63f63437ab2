/**
 * How one run ended. A run that succeeded may ask to be followed by another after `followUpMs`
 * (work still under way that one more run checks); a failed one is retried with backoff.
 */
export type LaneOutcome =
  | { readonly ok: true; readonly followUpMs?: number | undefined }
  | { readonly ok: false; readonly error: unknown };

export interface SerialLaneOptions {
  /** One run; a throw counts as a failed run. */
  run(): Promise<LaneOutcome>;
  /** The wait before the next try after `failures` failed runs in a row (ms). */
  retryDelay(failures: number): number;
  /** Told of each failed run (after stop, none is), and how long until it is tried again (ms). */
  onFailure?(error: unknown, retryMs: number): void;
  /**
   * Checked before each run: true when nothing asks for it after all (the asks it would serve were
   * covered by the run before). The round then ends; a follow-up an earlier run asked for stands.
   */
  skip?(): boolean;
  /** The least time between the starts of two runs (ms), given how long the last successful run took; asks in between share the next run. */
  spacing?(lastRunMs: number): number;
  /** Called when the lane's own timer (a retry, a follow-up) fires, just before it asks for a run. */
  onTimer?(): void;
  /** Monotonic milliseconds, for spacing; `performance.now` unless a test says otherwise. */
  now?(): number;
}

/**
 * Runs one thing at a time, again and again as it is asked to: an ask during a run is remembered
 * and runs once more after it (however many asks came), a failed run is retried on the lane's own
 * timer with backoff, and runs can be spaced apart. Timers never hold the process open.
 */
export class SerialLane {
  private running: Promise<void> | null = null;
  /** Asked for again while a run was in flight. */
  private dirty = false;
  private failures = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastStart = -Infinity;
  private lastRunMs = 0;
  private readonly now: () => number;

  constructor(private readonly options: SerialLaneOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** True while runs fail: the last one failed, and its retry is pending or under way. */
  get failing(): boolean {
    return this.failures > 0;
  }

  /** True while a run is in flight (or the lane waits for its spacing before one). */
  get busy(): boolean {
    return this.running !== null;
  }

  /** True once `stop` was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Asks for a run: now, or after the one in flight. A pending retry or follow-up is replaced by it. */
  request(): void {
    if (this.stopped) return;
    if (this.running !== null) {
      this.dirty = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.loop().finally(() => (this.running = null));
  }

  /** Resolves when the runs in flight now have ended. */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** No more runs or timers from now on; resolves when the run in flight, if any, has ended. */
  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    return this.settled();
  }

  private async loop(): Promise<void> {
    let followUpMs: number | undefined;
    do {
      if (this.options.spacing !== undefined) {
        const due = this.lastStart + this.options.spacing(this.lastRunMs);
        // Timers round to whole milliseconds and may fire a little early: wait until it is really due.
        for (let wait = due - this.now(); wait > 0 && !this.stopped; wait = due - this.now()) {
          await new Promise((resolve) => setTimeout(resolve, Math.ceil(wait)).unref());
        }
        if (this.stopped) return;
      }
      // Asks from here on come after this run has started: they need one more.
      this.dirty = false;
      if (this.options.skip?.() === true) break;
      const started = this.now();
      this.lastStart = started;
      const outcome = await this.options.run().catch((error: unknown): LaneOutcome => ({ ok: false, error }));
      if (this.stopped) return;
      if (!outcome.ok) {
        this.failures += 1;
        const delay = this.options.retryDelay(this.failures);
        this.options.onFailure?.(outcome.error, delay);
        this.schedule(delay);
        return;
      }
      this.lastRunMs = this.now() - started;
      this.failures = 0;
      followUpMs = outcome.followUpMs;
    } while (this.dirty && !this.stopped);
    if (followUpMs !== undefined && !this.stopped) this.schedule(followUpMs);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.options.onTimer?.();
      this.request();
    }, ms);
    this.timer.unref();
  }
}
