import type { HeldState, NginxRuntimeChannel, NginxRuntimeState } from '../domain/nginx-runtime.js';
import { planNginxRuntime, type NginxPlanOptions, type NginxRuntimePlan } from '../domain/nginx-runtime-plan.js';
import type { NodeSnapshot } from '../domain/snapshot.js';
import type { NginxChannels } from '../fleet/nginx-runtime/nginx-channel-pool.js';
import { nginxLeftAlone, toNginxRuntime } from '../render/nginx-runtime-view.js';

type Address = { readonly host: string; readonly port: number };

/** What an NGINX node's channel said it holds, or why that is unknown (the error says what to do). */
export type NginxObservation =
  | { readonly ok: true; readonly held: HeldState }
  | { readonly ok: false; readonly error: string };

/** One NGINX node's runtime picture: what it should hold, what it holds, and the push between. */
export interface NginxNodeRuntime {
  readonly desired: NginxRuntimeState;
  /** What member health is read against: `desired` and the tenants it leaves alone (NodeSnapshot.unsettled); made when asked. */
  watched(): NginxRuntimeState;
  readonly observation: NginxObservation;
  /** Null when the node could not be read. */
  readonly plan: NginxRuntimePlan | null;
}

/**
 * Reads an NGINX node's runtime channel and plans the partial push that brings it to a snapshot.
 * Sends nothing: the reconciler pushes, plan previews only show. The same reads and the same
 * pure planner serve both, so a preview shows exactly what a pass would push.
 */
export class NginxRuntimePlanner {
  constructor(private readonly channels: NginxChannels) {}

  channel(node: string, address: Address): NginxRuntimeChannel {
    return this.channels.channel(node, address);
  }

  /** Starts reading what the node holds (never rejects): a pass begins it while its snapshot loads. */
  startObservation(node: string, address: Address): Promise<NginxObservation> {
    return this.channel(node, address)
      .held()
      .then(
        (held): NginxObservation => ({ ok: true, held }),
        (error: unknown): NginxObservation => ({
          ok: false,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
  }

  /**
   * Reads the node (or takes the read `early` began) and plans from `snapshot`. `appliedRevision`
   * is the revision of the configuration the node's agent last applied: until it reaches the
   * snapshot's, entries the snapshot dropped stay (its running config may still use them).
   */
  async plan(
    node: string,
    address: Address,
    snapshot: NodeSnapshot,
    options: { readonly early?: Promise<NginxObservation>; readonly appliedRevision: number | null },
  ): Promise<NginxNodeRuntime> {
    const observing = options.early ?? this.startObservation(node, address);
    const desired = toNginxRuntime(snapshot);
    const observation = await observing;
    const planOptions: NginxPlanOptions = {
      deferRemovals: options.appliedRevision === null || options.appliedRevision < snapshot.revision,
      ...(snapshot.unsettled !== undefined &&
        snapshot.unsettled.length > 0 && {
          leftAlone: nginxLeftAlone(snapshot.unsettled),
        }),
    };
    const unsettled = snapshot.unsettled ?? [];
    return {
      desired,
      watched: () =>
        unsettled.length === 0
          ? desired
          : toNginxRuntime({ ...snapshot, tenants: [...unsettled, ...snapshot.tenants] }),
      observation,
      plan: observation.ok ? planNginxRuntime(desired, observation.held, planOptions) : null,
    };
  }
}
