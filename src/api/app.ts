import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';
import { z } from 'zod';
import type { Logger } from '../logger.js';
import { errorHandler, sendError } from './error-handler.js';
import { mountRoutes, type MountDeps } from './mount.js';
import { buildOpenApi, type PublicEndpoint } from './openapi.js';
import { healthySchema, readySchema } from './responses/probe-responses.js';
import { requestLog } from './request-log.js';
import type { Metrics } from '../metrics.js';
import { empty, json, text, type Answered, type RouteSpec } from './route.js';
import { uiRouter } from './ui.js';

export interface AppDeps extends MountDeps {
  readonly logger: Logger;
  readonly routes: readonly RouteSpec[];
  /** Database reachable and migrations applied; throws with the reason otherwise. */
  readonly ready: () => Promise<void>;
  readonly version: string;
  readonly metrics: Metrics;
}

/** What the app answers besides the REST routes, without a token: documented with them. */
export const PUBLIC_ENDPOINTS: readonly PublicEndpoint[] = [
  {
    path: '/healthz',
    summary: 'Liveness: the process is up',
    tag: 'operations',
    responses: { 200: json(healthySchema, 'Up') },
    errors: [431],
  },
  {
    path: '/readyz',
    summary: 'Readiness: the database is reachable and migrations are applied',
    tag: 'operations',
    responses: { 200: json(readySchema, 'Ready') },
    errors: [431, 503],
  },
  {
    path: '/openapi.json',
    summary: 'This document',
    tag: 'operations',
    responses: { 200: json(z.record(z.string(), z.unknown()), 'The OpenAPI 3.1 document') },
    errors: [431],
  },
  {
    // The page itself, by its file name: `/ui/` serves the same (and `/ui` redirects there).
    path: '/ui/index.html',
    summary: "The operators' dashboard, also at /ui/ (it asks for a token and calls this API with it)",
    tag: 'operations',
    responses: {
      200: text('text/html; charset=utf-8', 'The dashboard page'),
      304: empty('Unchanged since the ETag or Last-Modified the browser holds'),
    },
    errors: [431],
  },
];

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  app.use(requestLog(deps.logger, deps.metrics));
  app.use(express.json({ limit: '1mb', strict: true }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' } satisfies Answered<typeof healthySchema>);
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.ready();
      res.json({ status: 'ready' } satisfies Answered<typeof readySchema>);
    } catch (err) {
      sendError(res, 503, 'not_ready', err instanceof Error ? err.message : String(err));
    }
  });

  const openapi = buildOpenApi(deps.routes, deps.version, PUBLIC_ENDPOINTS);
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openapi, { customSiteTitle: 'Switchyard API' }));
  app.use('/ui', uiRouter());

  const router = express.Router();
  mountRoutes(router, deps.routes, deps);
  app.use(router);

  app.use((req, res) => sendError(res, 404, 'not_found', `no route for ${req.method} ${req.path}`));
  app.use(errorHandler(deps.logger));
  return app;
}
