import { UnavailableError } from '../domain/errors.js';

/** Seconds a client is told to wait before retrying a request the database could not serve. */
export const RETRY_AFTER_S = 2;

/** SQLSTATEs that mean the server went away or will not take connections (not that the query was wrong). */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03']);
const UNAVAILABLE_SYSCALL_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** pg's own messages for a connection that died or was never usable; they carry no code. */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
];

/**
 * True when `err` says the database connection failed (SQLSTATE class 08, admin or crash
 * shutdown, cannot connect now, a refused or reset socket, pg's "Connection terminated"), as
 * opposed to an error in the statement itself.
 */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (err instanceof UnavailableError) return true;
  const code = 'code' in err ? String((err as { code: unknown }).code) : '';
  if (code.startsWith('08') && code.length === 5) return true;
  if (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_SYSCALL_CODES.has(code)) return true;
  const message = err instanceof Error ? err.message : '';
  if (UNAVAILABLE_MESSAGES.some((m) => message.startsWith(m))) return true;
  // Several addresses tried (localhost as ::1 and 127.0.0.1): each refused.
  return err instanceof AggregateError && err.errors.length > 0 && err.errors.every(isConnectionError);
}

/** `err` as an UnavailableError when it is a connection error, otherwise `err` itself. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof UnavailableError || !isConnectionError(err)) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new UnavailableError(`the database is unavailable (${reason}); retry in ${RETRY_AFTER_S} s`, RETRY_AFTER_S, {
    cause: err,
  });
}
