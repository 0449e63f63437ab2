import { backoffDelay, type BackoffPolicy } from './backoff.js';

/**
 * Capped exponential backoff with "equal jitter": between half and all of the delay, so a fleet
 * of agents that lost the control plane at the same moment does not come back in step.
 * `random` returns [0, 1), as Math.random does.
 */
export function jitteredDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const delay = backoffDelay(policy, failures);
  return Math.round(delay / 2 + (delay / 2) * Math.min(Math.max(random(), 0), 1));
}
