/** The part of the change feed a long poll needs: a callback per committed revision. */
export interface ChangeSource {
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}

/** A waiting long poll looks again at least this often (ms): builds stored by another replica wake nobody here. */
const RECHECK_MS = 1000;

/**
 * What wakes the long polls waiting on a node: a build of it stored by this process, any
 * committed write (the change feed), a second passing, and the process stopping.
 */
export class LongPollWakeups {
  private readonly waiting = new Map<string, Set<() => void>>();
  /** Aborted when the process stops: long polls answer at once instead of holding shutdown for their wait. */
  private readonly closing = new AbortController();

  constructor(private readonly changes: ChangeSource) {}

  /** True once `close` was called: a poll answers with what it has instead of waiting. */
  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Ends every wait now; called when the process stops. */
  close(): void {
    this.closing.abort();
  }

  /** Wakes every poll waiting on the node: a build of it was stored. */
  buildStored(node: string): void {
    for (const wake of [...(this.waiting.get(node) ?? [])]) wake();
  }

  /**
   * Resolves at the first of: a build of the node stored, a committed change, `signal` aborting,
   * `close`, a second passing, or `deadline` (ms since the epoch).
   */
  next(node: string, deadline: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const listeners = this.waiting.get(node) ?? new Set<() => void>();
      this.waiting.set(node, listeners);
      const done = () => {
        clearTimeout(timer);
        this.changes.off('change', done);
        listeners.delete(done);
        if (listeners.size === 0 && this.waiting.get(node) === listeners) this.waiting.delete(node);
        signal?.removeEventListener('abort', done);
        this.closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(deadline - Date.now(), RECHECK_MS)));
      listeners.add(done);
      this.changes.on('change', done);
      signal?.addEventListener('abort', done);
      this.closing.signal.addEventListener('abort', done);
    });
  }
}
