/**
 * A mistake in how a command was called: arguments, flags, or a flag that contradicts what it
 * names (`render --node edge-1 --kind nginx` for a HAProxy node). Exit 1, with the message saying
 * what to fix.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
