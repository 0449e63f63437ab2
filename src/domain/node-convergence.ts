import { agentSilence } from './node-health.js';
import type { NodeStatus, ProxyNode } from './node.js';

/** Why a node is not converged, as a stable code (a metrics label); the words are in `waitingFor`. */
export type NotConvergedCause =
  | 'agent_silent'
  | 'runtime_api_failing'
  | 'no_config'
  | 'apply_failed'
  | 'not_applied'
  | 'runtime_pending';

export interface Convergence {
  /** The node runs the latest config built for it, nothing is pending, and it is alive. */
  readonly converged: boolean;
  /** Why it is not converged, in words; null when it is. */
  readonly waitingFor: string | null;
  readonly cause: NotConvergedCause | null;
}

/** A node as the API shows it: what it reported and was pushed, and the verdict on it. */
export type NodeView = Omit<ProxyNode, 'status'> & { readonly status: NodeStatus & Convergence };

export type ConvergenceInput = Pick<ProxyNode, 'lastHeartbeatAt' | 'createdAt' | 'runtimeAddress'> & {
  /** Names what failed in words: HAProxy's Runtime API or NGINX's runtime channel (absent: HAProxy). */
  readonly kind?: ProxyNode['kind'];
  readonly status: Pick<NodeStatus, 'desiredHash' | 'appliedHash' | 'lastError'> & {
    readonly runtime: Pick<NodeStatus['runtime'], 'pending' | 'error'>;
  };
};

const CONVERGED: Convergence = { converged: true, waitingFor: null, cause: null };
const not = (cause: NotConvergedCause, waitingFor: string): Convergence => ({ converged: false, waitingFor, cause });

/**
 * The one rule for whether a node is converged, used by every view (node, tenant status, plan,
 * metrics). A node whose agent is silent past `MISSED_HEARTBEATS` intervals, or whose last Runtime
 * API or runtime channel push failed, is not converged whatever hashes it last reported: the proxy may be dead.
 * Otherwise it must have applied the latest stored config with no runtime command pending.
 * Pure: `now` (ms) is passed in.
 */
export function decideConvergence(node: ConvergenceInput, now: number, heartbeatIntervalMs: number): Convergence {
  const silent = agentSilence(node, now, heartbeatIntervalMs);
  if (silent !== null) return not('agent_silent', `its agent to report again: ${silent}`);
  const runtime = node.status.runtime;
  if (runtime.error !== null) {
    const channel = node.kind === 'nginx' ? 'runtime channel' : 'Runtime API';
    return not('runtime_api_failing', `its ${channel}, whose last push failed: ${runtime.error}`);
  }
  if (node.status.desiredHash === null) return not('no_config', 'no configuration built yet');
  if (node.status.appliedHash !== node.status.desiredHash) {
    return node.status.lastError
      ? not('apply_failed', `agent failed to apply: ${node.status.lastError.split('\n')[0]}`)
      : not('not_applied', 'agent to apply the latest configuration');
  }
  if (node.runtimeAddress !== null && runtime.pending > 0)
    return not(
      'runtime_pending',
      node.kind === 'nginx' ? `${runtime.pending} runtime entries` : `${runtime.pending} runtime command(s)`,
    );
  return CONVERGED;
}

/** The node with the verdict of `decideConvergence` in its status. */
export function withConvergence(node: ProxyNode, now: number, heartbeatIntervalMs: number): NodeView {
  return { ...node, status: { ...node.status, ...decideConvergence(node, now, heartbeatIntervalMs) } };
}
