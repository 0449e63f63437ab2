import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    /** `X-Request-Id` from the client when well-formed, otherwise a new UUID; echoed in the answer. */
    id: string;
  }
}

/**
 * Gives every request an id and logs it when it finishes: writes and failures at `info` (5xx at
 * `error`), successful reads at `debug`, so a busy read path costs one level check, not a log line.
 */
export function requestLog(logger: Logger, metrics?: Metrics) {
  const debugEnabled = () => logger.isLevelEnabled('debug');
  return (req: Request, res: Response, next: NextFunction): void => {
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', req.id);
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const status = res.statusCode;
      // The route template, never the raw path: one time series per endpoint, not per object.
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics?.httpDuration.observe(
        { method: req.method, route, status: String(status) },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
      const read = req.method === 'GET' || req.method === 'HEAD';
      if (status < 400 && read && !debugEnabled()) return;
      const entry = {
        requestId: req.id,
        method: req.method,
        path: req.path,
        status,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
        ip: req.ip,
      };
      if (status >= 500) logger.error(entry, 'request failed');
      else if (status >= 400 || !read) logger.info(entry, 'request');
      else logger.debug(entry, 'request');
    });
    next();
  };
}
