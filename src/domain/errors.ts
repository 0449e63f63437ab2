/**
 * The few error types the whole code base throws. One express middleware maps them to HTTP
 * (see api/error-handler.ts); everything else becomes an opaque 500.
 */
export interface FieldIssue {
  /** Dotted path of the offending field, for example `body.members.2.port`. */
  readonly path: string;
  readonly message: string;
}

export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    message: string,
    readonly issues: readonly FieldIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
}

export class ForbiddenError extends Error {
  override readonly name = 'ForbiddenError';
}

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  constructor(
    readonly resource: string,
    readonly id: string,
  ) {
    super(`${resource} '${id}' not found`);
  }
}

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
  constructor(
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The client's `If-Match` names a version that is no longer current. */
export class PreconditionFailedError extends Error {
  override readonly name = 'PreconditionFailedError';
  constructor(
    readonly resource: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${resource} has changed: If-Match ${expected} but the current ETag is ${actual}; re-read it and retry`);
  }
}

/** A proxy, a validator binary or another dependency failed. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
}

/**
 * The database is unreachable (restarting, connection killed, refusing connections): the request
 * was not acknowledged and may be retried after `retryAfterS` seconds (a write with its
 * Idempotency-Key, in case its commit went through as the connection died).
 */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
  constructor(
    message: string,
    readonly retryAfterS: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
