import type { Services } from '../services/services.js';
import { addressPoolRoutes } from './address-pools.js';
import { allocationRoutes } from './allocations.js';
import { auditRoutes } from './audit.js';
import { metricsRoute } from './metrics.js';
import { caBundleRoutes } from './ca-bundles.js';
import { certificateRoutes } from './certificates.js';
import { configRoutes } from './configs.js';
import { memberRoutes } from './members.js';
import { nodeRoutes } from './nodes.js';
import { planRoutes } from './plan.js';
import { poolRoutes } from './pools.js';
import { replicaRoute } from './replica.js';
import type { RouteSpec } from './route.js';
import { routeRoutes } from './routes.js';
import { statsRoutes } from './stats.js';
import { tenantRoutes } from './tenants.js';
import { tokenRoutes } from './tokens.js';
import { vipRoutes } from './vips.js';

/** Every REST route, in one list: mounted by the app, walked by the OpenAPI generator and the isolation tests. */
export function allRoutes(s: Services): RouteSpec[] {
  return [
    ...tenantRoutes(s.tenants, s.status),
    ...tokenRoutes(s.tokens),
    ...addressPoolRoutes(s.addressPools),
    ...vipRoutes(s.vips),
    ...routeRoutes(s.routes),
    ...poolRoutes(s.pools),
    ...memberRoutes(s.members),
    ...certificateRoutes(s.certificates),
    ...caBundleRoutes(s.caBundles),
    ...nodeRoutes(s.nodes),
    ...configRoutes(s.configs),
    ...planRoutes(s.plans),
    ...auditRoutes(s.audit),
    ...allocationRoutes(s.allocations, s.placement),
    ...statsRoutes(s.stats),
    replicaRoute(s.replica),
    metricsRoute(s.metrics, s.nodes, s.replica),
  ];
}
