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
export function nodeHealth(
  node: Pick<ProxyNode, 'lastHeartbeatAt' | 'createdAt' | 'status'>,
  now: number,
  heartbeatIntervalMs: number,
): NodeHealth {
  if (node.status.runtime.error !== null)
    return { healthy: false, reason: `its Runtime API push failed: ${node.status.runtime.error}` };
  return silence(node, now, heartbeatIntervalMs, Number.NEGATIVE_INFINITY) ?? { healthy: true, reason: null };
}

/**
 * Why the node's agent counts as silent (no sign of life for more than `MISSED_HEARTBEATS`
 * intervals, its registration counting as one), or null while it is not. Pure.
 */
export function agentSilence(
  node: Pick<ProxyNode, 'lastHeartbeatAt' | 'createdAt'>,
  now: number,
  heartbeatIntervalMs: number,
): string | null {
  return silence(node, now, heartbeatIntervalMs, Number.NEGATIVE_INFINITY)?.reason ?? null;
}

/** Unhealthy when no sign of life came for more than `MISSED_HEARTBEATS` intervals since `countFrom`; null otherwise. */
function silence(
  node: Pick<ProxyNode, 'lastHeartbeatAt' | 'createdAt'>,
  now: number,
  heartbeatIntervalMs: number,
  countFrom: number,
): NodeHealth | null {
  const silentMs = now - Math.max(Date.parse(node.lastHeartbeatAt ?? node.createdAt), countFrom);
  if (silentMs <= MISSED_HEARTBEATS * heartbeatIntervalMs) return null;
  const what = node.lastHeartbeatAt === null ? 'no heartbeat since it was registered' : 'no heartbeat';
  return { healthy: false, reason: `${what} for ${Math.round(silentMs / 1000)} s (${window(heartbeatIntervalMs)})` };
}

const window = (heartbeatIntervalMs: number): string =>
  `more than ${MISSED_HEARTBEATS} × ${heartbeatIntervalMs / 1000} s`;

/**
 * Whether placement keeps using the node. Stricter about time than `nodeHealth`, because moving
 * tenants costs reloads on the nodes that take them: a node leaves placement only after
 * `MISSED_HEARTBEATS` intervals of silence, or of Runtime API pushes failing without a success
 * between (one failed push, say while the proxy restarts, is not enough). Nothing before
 * `countFrom` counts against a node: a leader that just took over could not have heard earlier
 * heartbeats, nor seen pushes that succeeded. Pure: `now` is passed in.
 */
export function placementHealth(
  node: Pick<ProxyNode, 'lastHeartbeatAt' | 'createdAt'> & {
    readonly status: { readonly runtime: Pick<ProxyNode['status']['runtime'], 'error' | 'errorSince'> };
  },
  now: number,
  heartbeatIntervalMs: number,
  countFrom: number,
): NodeHealth {
  const silent = silence(node, now, heartbeatIntervalMs, countFrom);
  if (silent !== null) return silent;
  const runtime = node.status.runtime;
  if (runtime.error !== null) {
    const failingMs = now - Math.max(runtime.errorSince === null ? now : Date.parse(runtime.errorSince), countFrom);
    if (failingMs > MISSED_HEARTBEATS * heartbeatIntervalMs) {
      return {
        healthy: false,
        reason: `its Runtime API pushes have failed for ${Math.round(failingMs / 1000)} s (${window(heartbeatIntervalMs)}): ${runtime.error}`,
      };
    }
  }
  return { healthy: true, reason: null };
}
