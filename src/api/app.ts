import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';
import type { Logger } from '../logger.js';
import { errorHandler, sendError } from './error-handler.js';
import { mountRoutes, type MountDeps } from './mount.js';
import { buildOpenApi } from './openapi.js';
import { requestLog } from './request-log.js';
import type { Metrics } from '../metrics.js';
import type { RouteSpec } from './route.js';
import { uiRouter } from './ui.js';

export interface AppDeps extends MountDeps {
  readonly logger: Logger;
  readonly routes: readonly RouteSpec[];
  /** Database reachable and migrations applied; throws with the reason otherwise. */
  readonly ready: () => Promise<void>;
  readonly version: string;
  readonly metrics: Metrics;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  app.use(requestLog(deps.logger, deps.metrics));
  app.use(express.json({ limit: '1mb', strict: true }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.ready();
      res.json({ status: 'ready' });
    } catch (err) {
      sendError(res, 503, 'not_ready', err instanceof Error ? err.message : String(err));
    }
  });

  const openapi = buildOpenApi(deps.routes, deps.version);
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
