/** Capped exponential backoff: how long to wait before the next attempt after consecutive failures. */
export interface BackoffPolicy {
  /** Delay after the first failure. */
  readonly initialMs: number;
  /** Cap, so a peer that comes back is found again quickly. */
  readonly maxMs: number;
  readonly factor: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 10_000, factor: 2 };

/** Delay before the next attempt after `failures` consecutive failures (1 = the first). */
export function backoffDelay(policy: BackoffPolicy, failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** (failures - 1));
}

/**
 * The same delay with "equal jitter": between half and all of it, so clients that failed at the
 * same moment (a fleet of agents losing the control plane, CI jobs hitting one 503) do not come
 * back in step. `random` returns [0, 1), as Math.random does.
 */
export function jitteredDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const delay = backoffDelay(policy, failures);
  return Math.round(delay / 2 + (delay / 2) * Math.min(Math.max(random(), 0), 1));
}
