import type { Services } from '../services/services.js';
import type { RouteSpec } from './route.js';
import { tenantRoutes } from './tenants.js';
import { tokenRoutes } from './tokens.js';

/** Every REST route, in one list: mounted by the app, walked by the OpenAPI generator and the isolation tests. */
export function allRoutes(s: Services): RouteSpec[] {
  return [...tenantRoutes(s.tenants), ...tokenRoutes(s.tokens)];
}
