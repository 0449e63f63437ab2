import { safeInt } from './guard.js';
import { nginxListenIp } from './nginx-address.js';
import type { TenantContext } from './haproxy-tenant-context.js';
import { allowlist } from './nginx-http-view.js';
import { NODE_NAMES, formatEndpoint, formatMillis } from './nginx-names.js';
import { planUpstreams, upstreamView, type NginxUpstreamView } from './nginx-upstream-view.js';

/** One tenant's `stream {}` part: its TCP VIPs. */
export interface NginxStreamTenantView {
  readonly upstreams: readonly NginxUpstreamView[];
  readonly servers: readonly NginxStreamServerView[];
}

export interface NginxStreamServerView {
  readonly vip: string;
  readonly listen: string;
  readonly allow: readonly string[];
  readonly connectionLimit: { readonly zone: string; readonly count: number };
  readonly connectTimeout: string;
  /** Idle time allowed on either side: nginx's stream proxy has one timeout for both. */
  readonly idleTimeout: string;
  /** Null: no default pool, or a pool without members; the connection is closed at once. */
  readonly upstream: string | null;
}

const LIMIT_CONN_MAX = 65_535;

export function streamTenantView(ctx: TenantContext): NginxStreamTenantView | null {
  const vips = ctx.vips.filter((v) => v.protocol === 'tcp');
  if (vips.length === 0) return null;
  const upstreams = planUpstreams(ctx, 'stream');
  return {
    upstreams: upstreams.plans.map((plan) => upstreamView(ctx, plan)),
    servers: vips.map((vip) => {
      const field = `${ctx.field}.vips.${vip.name}`;
      const t = vip.timeouts;
      const clientMs = safeInt(`${field}.timeouts.clientMs`, t.clientMs, 1, 3_600_000);
      const serverMs = safeInt(`${field}.timeouts.serverMs`, t.serverMs, 1, 3_600_000);
      return {
        vip: `${ctx.id}/${vip.name}`,
        listen: formatEndpoint(
          nginxListenIp(`${field}.address`, vip.address),
          safeInt(`${field}.port`, vip.port, 1, 65535),
        ),
        allow: allowlist(field, vip.allowlist),
        connectionLimit: { zone: NODE_NAMES.streamConnectionZone, count: Math.min(ctx.maxConnections, LIMIT_CONN_MAX) },
        connectTimeout: formatMillis(safeInt(`${field}.timeouts.connectMs`, t.connectMs, 1, 600_000)),
        idleTimeout: formatMillis(Math.max(clientMs, serverMs)),
        upstream: vip.defaultPool === null ? null : upstreams.target(vip, vip.defaultPool),
      };
    }),
  };
}
