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
