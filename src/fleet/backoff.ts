export interface BackoffPolicy {
  /** Delay after the first failure. */
  readonly initialMs: number;
  /** Cap, so a node that comes back is found again quickly. */
  readonly maxMs: number;
  readonly factor: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 10_000, factor: 2 };

/** Delay before the next attempt after `failures` consecutive failures (1 = the first). */
export function backoffDelay(policy: BackoffPolicy, failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** (failures - 1));
}
