import type { ErrorRequestHandler, Response } from 'express';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PreconditionFailedError,
  UnauthorizedError,
  UnavailableError,
  UpstreamError,
  ValidationError,
} from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { errorSchema } from './responses/error-response.js';
import type { Answered } from './route.js';

export function sendError(res: Response, status: number, code: string, message: string, details?: unknown): void {
  const body: Answered<typeof errorSchema> = { error: { code, message, details: details ?? null } };
  res.status(status).json(body);
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

/** The one place errors become HTTP answers. Unknown errors are logged and answered without internals. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof ValidationError) return sendError(res, 400, 'validation_failed', err.message, err.issues);
    if (err instanceof UnauthorizedError) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="switchyard"');
      return sendError(res, 401, 'unauthorized', err.message);
    }
    if (err instanceof ForbiddenError) return sendError(res, 403, 'forbidden', err.message);
    if (err instanceof NotFoundError)
      return sendError(res, 404, 'not_found', err.message, { resource: err.resource, id: err.id });
    if (err instanceof ConflictError) return sendError(res, 409, 'conflict', err.message, err.details);
    if (err instanceof PreconditionFailedError) {
      return sendError(res, 412, 'precondition_failed', err.message, { expected: err.expected, current: err.actual });
    }
    if (err instanceof UpstreamError) return sendError(res, 503, 'upstream_unavailable', err.message);
    if (err instanceof UnavailableError) {
      // Nothing was acknowledged: the client retries after the pause (with its Idempotency-Key, if any).
      logger.warn(
        { err, requestId: String(req.id ?? ''), method: req.method, url: req.originalUrl },
        'database unavailable',
      );
      res.setHeader('Retry-After', String(err.retryAfterS));
      return sendError(res, 503, 'unavailable', 'the database is unavailable; retry after the Retry-After seconds');
    }
    const h = err as HttpishError;
    const status = h?.status ?? h?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // body-parser and express's own errors: malformed JSON, too large, wrong charset.
      const code =
        h.type === 'entity.parse.failed'
          ? 'invalid_json'
          : h.type === 'entity.too.large'
            ? 'payload_too_large'
            : 'bad_request';
      const message =
        code === 'invalid_json'
          ? 'the request body is not valid JSON'
          : code === 'payload_too_large'
            ? 'the request body is larger than 1 MB'
            : (h.expose && h.message) || 'bad request';
      return sendError(res, status, code, message);
    }
    const requestId = String(req.id ?? '');
    logger.error({ err, requestId, method: req.method, url: req.originalUrl }, 'unhandled error');
    return sendError(res, 500, 'internal', `internal error; quote request id ${requestId} when reporting it`);
  };
}
