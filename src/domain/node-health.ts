import type { ProxyNode } from './node.js';

/** A node missing heartbeats for this many intervals is taken out of allocation. */
export const MISSED_HEARTBEATS = 3;

export interface NodeHealth {
  readonly healthy: boolean;
  /** Why the node is unhealthy; null when healthy. */
  readonly reason: string | null;
}

/**
 * Whether the rebalancer may compute caps onto a node: it has shown a sign of life (a heartbeat,
 * or its registration when none came yet) within `MISSED_HEARTBEATS` × the heartbeat interval,
 * and its last Runtime API push did not fail. Pure: `now` is passed in.
 */
export function nodeHealth(node: Pick<ProxyNode, 'lastHeartbeatAt' | 'createdAt' | 'status'>, now: number, heartbeatIntervalMs: number): NodeHealth {
  if (node.status.runtime.error !== null) return { healthy: false, reason: `its Runtime API push failed: ${node.status.runtime.error}` };
  const seen = Date.parse(node.lastHeartbeatAt ?? node.createdAt);
  const silentMs = now - seen;
  const allowedMs = MISSED_HEARTBEATS * heartbeatIntervalMs;
  if (silentMs > allowedMs) {
    const what = node.lastHeartbeatAt === null ? 'no heartbeat since it was registered' : 'no heartbeat';
    return { healthy: false, reason: `${what} for ${Math.round(silentMs / 1000)} s (more than ${MISSED_HEARTBEATS} × ${heartbeatIntervalMs / 1000} s)` };
  }
  return { healthy: true, reason: null };
}

/**
 * Whether placement keeps using the node. Stricter about time than `nodeHealth`, because moving
 * tenants costs reloads on the nodes that take them: a node leaves placement only after
 * `MISSED_HEARTBEATS` intervals of silence, or of Runtime API pushes failing without a success
 * between (one failed push, say while the proxy restarts, is not enough). Nothing before
 * `countFrom` counts against a node: a leader that just took over could not have heard earlier
 * heartbeats, nor seen pushes that succeeded. Pure: `now` is passed in.
 */
export function placementHealth(
  node: Pick<ProxyNode, 'lastHeartbeatAt' | 'createdAt'> & { readonly status: { readonly runtime: Pick<ProxyNode['status']['runtime'], 'error' | 'errorSince'> } },
  now: number,
  heartbeatIntervalMs: number,
  countFrom: number,
): NodeHealth {
  const allowedMs = MISSED_HEARTBEATS * heartbeatIntervalMs;
  const window = `more than ${MISSED_HEARTBEATS} × ${heartbeatIntervalMs / 1000} s`;
  const silentMs = now - Math.max(Date.parse(node.lastHeartbeatAt ?? node.createdAt), countFrom);
  if (silentMs > allowedMs) {
    const what = node.lastHeartbeatAt === null ? 'no heartbeat since it was registered' : 'no heartbeat';
    return { healthy: false, reason: `${what} for ${Math.round(silentMs / 1000)} s (${window})` };
  }
  const runtime = node.status.runtime;
  if (runtime.error !== null) {
    const failingMs = now - Math.max(Date.parse(runtime.errorSince ?? new Date(now).toISOString()), countFrom);
    if (failingMs > allowedMs) return { healthy: false, reason: `its Runtime API pushes have failed for ${Math.round(failingMs / 1000)} s (${window}): ${runtime.error}` };
  }
  return { healthy: true, reason: null };
}
