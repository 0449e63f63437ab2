import { holdsOn } from '../db/reload-hold-repository.js';
import type { NodeKind, ProxyNode } from '../domain/node.js';
import { decideConvergence, type Convergence } from '../domain/node-convergence.js';
import { describeStructuralChanges } from '../domain/structural.js';
import type { Db } from '../db/connect.js';
import type { HeldTenant } from '../db/config-repository.js';
import { loadDesiredState, type DesiredState } from '../db/desired-state-repository.js';
import { allNodes } from '../db/node-repository.js';
import type { RuntimeCommand } from '../fleet/runtime-api/commands/runtime-command.js';
import { formatRuntimeAddress } from '../domain/node.js';
import type { ConfigService } from './config/config-service.js';
import type { PlannedConfig } from './config/node-config-planner.js';
import { nodeSettingsOf } from './config/node-settings.js';
import type { RuntimePlanner } from './runtime-planner.js';
import type { NginxRuntimePlanner } from './nginx-runtime-planner.js';
import { describeNginxChange } from '../domain/nginx-runtime-plan.js';
import type { NodeSnapshot } from '../domain/snapshot.js';
import { Semaphore } from '../util/semaphore.js';

/** A runtime command as the plan shows it: its line (a `<<` payload, which may hold a private key, is never shown). */
export interface PlannedCommand {
  readonly command: string;
  readonly description: string;
}

export interface NodePlan extends Convergence {
  readonly node: string;
  readonly kind: NodeKind;
  /** The desired-state revision the plan reaches. */
  readonly desiredRevision: number;
  /** What the node's agent last reported applying. */
  readonly applied: {
    readonly revision: number | null;
    readonly contentHash: string | null;
    readonly structuralHash: string | null;
  };
  /** The config the node would be given now; null when it cannot be rendered (see error). */
  readonly latest: {
    readonly contentHash: string;
    readonly structuralHash: string;
    readonly heldTenants: readonly HeldTenant[];
  } | null;
  readonly error: string | null;
  /** Whether the node must reload to converge (its applied structure differs from the latest), and why. */
  readonly reload: { readonly pending: boolean; readonly reasons: readonly string[] };
  /** HAProxy nodes with a Runtime API, NGINX nodes with a runtime channel: what would be sent now. */
  readonly runtime: RuntimeSection | null;
}

export interface RuntimeSection {
  readonly address: string;
  readonly reachable: boolean;
  readonly error: string | null;
  readonly commands: readonly PlannedCommand[];
  /** Differences the live process keeps until its next reload. */
  readonly pendingReload: readonly string[];
  readonly inProgress: readonly string[];
  readonly notes: readonly string[];
}

export interface FleetPlan {
  readonly revision: number;
  readonly nodes: readonly NodePlan[];
}

/** What a dry-run write saw inside its transaction, before the rollback. */
export interface CapturedState {
  readonly state: DesiredState;
  readonly nodes: readonly ProxyNode[];
}

/** Rendering validates with the real binary; a handful at a time keeps a big fleet's plan from forking hundreds. */
const CONCURRENT_NODES = 4;

/**
 * Pending work per node: runtime commands or entries it would be sent now (observed live through
 * its Runtime API or NGINX runtime channel) and whether it needs a reload and why. Reads only: it stores no config version and sends
 * no command. Also plans a dry-run write's state, captured inside its transaction.
 */
export class PlanService {
  private readonly slots = new Semaphore(CONCURRENT_NODES);

  constructor(
    private readonly db: Db,
    private readonly configs: ConfigService,
    private readonly runtime: RuntimePlanner,
    private readonly nginxRuntime: Pick<NginxRuntimePlanner, 'plan'>,
    /** The agents' heartbeat interval: a node silent for 3 of them is not converged. */
    private readonly heartbeatIntervalMs: number,
  ) {}

  async current(): Promise<FleetPlan> {
    const [state, nodes] = await Promise.all([loadDesiredState(this.db), allNodes(this.db)]);
    return this.planFor({ state, nodes });
  }

  /** Reads, inside a write's transaction, what planning that write needs. */
  async capture(trx: Db): Promise<CapturedState> {
    return { state: await loadDesiredState(trx), nodes: await allNodes(trx) };
  }

  async planFor(captured: CapturedState): Promise<FleetPlan> {
    const nodes = await Promise.all(
      captured.nodes.map((node) => this.slots.run(() => this.planNode(node, captured.state))),
    );
    return { revision: captured.state.revision, nodes };
  }

  private async planNode(node: ProxyNode, state: DesiredState): Promise<NodePlan> {
    const applied =
      node.status.appliedHash === null
        ? undefined
        : await this.configs.runningStructure(node.name, node.status.appliedHash);
    const base = {
      node: node.name,
      kind: node.kind,
      // What the node reported and was pushed, judged by the rule every view uses; the sections
      // below are what it would be sent now, which a dry run plans against its would-be state.
      ...decideConvergence(node, Date.now(), this.heartbeatIntervalMs),
      desiredRevision: state.revision,
      applied: {
        revision: node.appliedRevision,
        contentHash: node.status.appliedHash,
        structuralHash: applied?.structuralHash ?? null,
      },
    };
    let rendered: PlannedConfig;
    try {
      // Tenants held on the node for listeners it could not bind are planned as the builds serve them.
      const holds = {
        holds: await holdsOn(this.db, node.name),
        appliedHash: node.status.appliedHash,
        appliedRevision: node.appliedRevision,
        now: Date.now(),
      };
      rendered = await this.configs.renderPlanned(nodeSettingsOf(node), state, {
        reloadGeneration: node.reloadRequest.generation,
        node,
        holds,
      });
    } catch (error) {
      return {
        ...base,
        latest: null,
        error: (error as Error).message,
        reload: { pending: false, reasons: [] },
        runtime: null,
      };
    }
    const latest = {
      contentHash: rendered.contentHash,
      structuralHash: rendered.structuralHash,
      structuralParts: rendered.structuralParts(),
    };
    const runtime =
      node.runtimeAddress === null
        ? null
        : node.kind === 'nginx'
          ? await this.nginxSection(node, node.runtimeAddress, rendered.snapshot)
          : await this.runtimeSection(node, node.runtimeAddress, rendered.snapshot);
    return {
      ...base,
      latest: {
        contentHash: latest.contentHash,
        structuralHash: latest.structuralHash,
        heldTenants: rendered.heldTenants,
      },
      error: null,
      reload: reloadStatus(node, applied, latest),
      runtime,
    };
  }

  private async runtimeSection(
    node: ProxyNode,
    address: { host: string; port: number },
    snapshot: Parameters<RuntimePlanner['plan']>[2],
  ): Promise<RuntimeSection> {
    // A preview shows everything the node differs in, backup flags included (a reload reason).
    const { observation, plan } = await this.runtime.plan(node.name, address, snapshot, { serverStats: true });
    return {
      address: formatRuntimeAddress(address)!,
      reachable: observation.ok,
      error: observation.ok ? null : observation.error,
      commands: (plan?.commands ?? []).map(shown),
      pendingReload: plan?.pendingReload ?? [],
      inProgress: plan?.inProgress ?? [],
      notes: plan?.notes ?? [],
    };
  }

  /**
   * An NGINX node's channel: the entries a pass would push now, each live through the channel
   * without a reload (members, weights, states, backup, health checks, algorithm, caps).
   */
  private async nginxSection(
    node: ProxyNode,
    address: { host: string; port: number },
    snapshot: NodeSnapshot,
  ): Promise<RuntimeSection> {
    const { desired, observation, plan } = await this.nginxRuntime.plan(node.name, address, snapshot, {
      appliedRevision: node.appliedRevision,
    });
    const changes = plan?.changes ?? [];
    const notes: string[] = [];
    if (changes.length > 0)
      notes.push(`${changes.length} runtime change(s) go live through the runtime channel, no reload`);
    if (plan !== null && plan.ahead.length > 0)
      notes.push(
        `the node holds a newer revision of ${plan.ahead.slice(0, 5).join(', ')}${plan.ahead.length > 5 ? ` (and ${plan.ahead.length - 5} more)` : ''} than this state: left as it is`,
      );
    const deferred = plan?.deferred ?? [];
    return {
      address: formatRuntimeAddress(address)!,
      reachable: observation.ok,
      error: observation.ok ? null : observation.error,
      commands: changes.map((c) => describeNginxChange(c, desired)),
      // Removed once the node runs a configuration without them (its reload's state file drops them).
      pendingReload: deferred.map((d) => `remove ${d}: the configuration the node runs may still use it`),
      inProgress: [],
      notes,
    };
  }
}

function shown(command: RuntimeCommand): PlannedCommand {
  return { command: command.line, description: command.description };
}

/**
 * A reload is pending when the structure the node runs differs from the latest one. The agent
 * reports what it applied by content hash; its structure is looked up among the stored versions.
 */
function reloadStatus(
  node: ProxyNode,
  applied: { structuralHash: string; structuralParts: Record<string, string> } | undefined,
  latest: { contentHash: string; structuralHash: string; structuralParts: Record<string, string> },
): NodePlan['reload'] {
  if (node.status.appliedHash === null)
    return { pending: true, reasons: ['the node has not applied a configuration yet'] };
  if (node.status.appliedHash === latest.contentHash) return { pending: false, reasons: [] };
  if (applied === undefined)
    return {
      pending: true,
      reasons: ['the configuration the node runs is no longer stored, so it is replaced with a reload'],
    };
  if (applied.structuralHash === latest.structuralHash) return { pending: false, reasons: [] };
  // Versions stored before parts were recorded have none: the parts could only say "everything added".
  const comparable = Object.keys(applied.structuralParts).length > 0;
  const reasons = comparable
    ? describeStructuralChanges(applied.structuralParts, latest.structuralParts, node.kind)
    : [];
  if (reasons.length > 0) return { pending: true, reasons };
  if (node.kind === 'nginx' && node.runtimeAddress === null)
    return {
      pending: true,
      reasons: ['the node has no runtime channel (no runtimeAddress): NGINX applies every change with a reload'],
    };
  if (node.runtimeAddress === null)
    return { pending: true, reasons: ['the node has no Runtime API address: every change needs a reload'] };
  return { pending: true, reasons: ['the structure of the configuration changed'] };
}
