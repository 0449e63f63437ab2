import { planRuntime, type RuntimePlan } from '../domain/runtime-plan.js';
import type { DesiredRuntime } from '../domain/runtime-state.js';
import type { NodeSnapshot } from '../domain/snapshot.js';
import * as cmd from '../fleet/commands.js';
import { observeCommands, readObservation, type Observation } from '../fleet/observe-runtime.js';
import type { RuntimeCommand } from '../fleet/runtime-command.js';
import type { RuntimeExecutor } from '../fleet/runtime-executor.js';
import { toHaproxyRuntime } from '../render/haproxy-runtime-view.js';

/** Where a node's Runtime API is reached: one long-lived executor per node (RuntimeClientPool). */
export interface RuntimeExecutors {
  client(node: string, endpoint: { readonly host: string; readonly port: number }): RuntimeExecutor;
}

export interface RuntimePlannerOptions {
  /** See PlanOptions.drainTimeoutMs. */
  readonly drainTimeoutMs: number;
  /** Longest an observation may take, connecting included. */
  readonly observeTimeoutMs: number;
}

/** One node's runtime picture: what it should hold, what it holds (or why that is unknown), and the commands between. */
export interface NodeRuntime {
  readonly desired: DesiredRuntime;
  readonly observation: Observation;
  /** Null when the node could not be observed. */
  readonly plan: RuntimePlan<RuntimeCommand> | null;
}

/**
 * Observes a HAProxy node through its Runtime API (one pipelined batch) and plans the commands
 * that bring it to the served snapshot. Sends nothing but reads; the caller decides what to run.
 */
export class RuntimePlanner {
  constructor(
    private readonly executors: RuntimeExecutors,
    private readonly options: RuntimePlannerOptions,
  ) {}

  executor(node: string, endpoint: { readonly host: string; readonly port: number }): RuntimeExecutor {
    return this.executors.client(node, endpoint);
  }

  async plan(node: string, endpoint: { readonly host: string; readonly port: number }, snapshot: NodeSnapshot): Promise<NodeRuntime> {
    const desired = toHaproxyRuntime(snapshot);
    const results = await this.executor(node, endpoint).execute(observeCommands(desired), { timeoutMs: this.options.observeTimeoutMs });
    const observation = readObservation(desired, results);
    if (!observation.ok) return { desired, observation, plan: null };
    return { desired, observation, plan: planRuntime(desired, observation.observed, cmd, { drainTimeoutMs: this.options.drainTimeoutMs }) };
  }
}
