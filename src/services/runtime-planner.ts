import { planRuntime, type RuntimePlan } from '../domain/runtime-plan.js';
import type { DesiredRuntime } from '../domain/runtime-state.js';
import type { NodeSnapshot, TenantSnapshot } from '../domain/snapshot.js';
import { commandBuilders } from '../fleet/runtime-api/commands/command-builders.js';
import { showSslCert } from '../fleet/runtime-api/commands/ssl-cert-commands.js';
import {
  certificateReads,
  observationTarget,
  observeCommands,
  readObservation,
  readScopedObservation,
  scopedObserveCommands,
  sessionReads,
  withCertificates,
  withSessions,
  type Observation,
  type ObservationTarget,
  type ObserveOptions,
  type RuntimeScope,
} from '../fleet/observe-runtime.js';
import type { RuntimeCommand } from '../fleet/runtime-api/commands/runtime-command.js';
import { MIN_LANED_BATCH } from '../fleet/runtime-api/laned-executor.js';
import type { RuntimeExecutor } from '../fleet/runtime-api/runtime-executor.js';
import { capsMapFile, tenantRuntimeNames, toHaproxyRuntime } from '../render/haproxy-runtime-view.js';
import { haproxyNodeSettings } from '../render/haproxy-view.js';

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

/** A read of a node begun before the snapshot it will be compared with was ready (see `startObservation`). */
export interface EarlyObservation {
  readonly target: ObservationTarget;
  /** Read as soon as the replies arrive, so parsing too overlaps the snapshot's load. */
  readonly observation: Promise<Observation>;
}

/**
 * A pass that looks at a few tenants only: those whose snapshots changed since the pass before
 * (`previous`, what that pass planned from), added or removed ones included. Their objects are
 * read and compared, nothing else of the node.
 */
export interface PassScope {
  readonly tenants: ReadonlySet<string>;
  /** The scope's tenants as the pass before saw them (absent: added since). */
  readonly previous: readonly TenantSnapshot[];
  /** The scope's tenants now (absent: removed since). */
  readonly current: readonly TenantSnapshot[];
}

/** One node's runtime picture: what it should hold, what it holds (or why that is unknown), and the commands between. */
export interface NodeRuntime {
  readonly desired: DesiredRuntime;
  readonly observation: Observation;
  /** Null when the node could not be observed. */
  readonly plan: RuntimePlan<RuntimeCommand> | null;
  /** What a scoped pass read (its tenants' objects, now and before); absent for a whole read. */
  readonly read?: RuntimeScope;
}

/**
 * Observes a HAProxy node through its Runtime API (one pipelined batch, and a second small one
 * only while a server is being taken out: its sessions decide the next step) and plans the
 * commands that bring it to the served snapshot. Sends nothing but reads; the caller decides what to run.
 */
export class RuntimePlanner {
  /** Servers each node held when last observed. */
  private readonly servers = new Map<string, number>();

  constructor(
    private readonly executors: RuntimeExecutors,
    private readonly options: RuntimePlannerOptions,
  ) {}

  executor(node: string, endpoint: { readonly host: string; readonly port: number }): RuntimeExecutor {
    return this.executors.client(node, endpoint);
  }

  /**
   * Starts reading the node now, for a snapshot still being loaded: the read and the load then
   * take the time of one round trip instead of two. `target` guesses the files to read (the last
   * pass's); `plan` reads what the guess missed, and reads again if it guessed another map.
   */
  startObservation(
    node: string,
    endpoint: { readonly host: string; readonly port: number },
    target: ObservationTarget,
    options: ObserveOptions = {},
  ): EarlyObservation {
    const executor = this.executor(node, endpoint);
    // A node with enough servers for a batch to be spread over lanes gets them connected now,
    // while the snapshot loads, instead of when the batch is ready.
    if ((this.servers.get(node) ?? 0) >= MIN_LANED_BATCH) executor.warm?.();
    const results = executor.execute(observeCommands(target, options), { timeoutMs: this.options.observeTimeoutMs });
    return {
      target,
      observation: results.then((r) => {
        const observation = readObservation(target, r);
        if (observation.ok) this.servers.set(node, observation.observed.servers.length);
        return observation;
      }),
    };
  }

  /** What a node's first pass reads before its snapshot is known: the map (its path is the node's), no certificate yet. */
  firstTarget(configDir: string): ObservationTarget {
    return { mapFile: capsMapFile(configDir), certificateFiles: [] };
  }

  /**
   * Observes the node (or takes the read `early` began) and plans from `snapshot`. With `scope`,
   * only the scope's tenants are read and compared (a pass for a few changed tenants); their
   * desired runtime is all `desired` then holds.
   */
  async plan(
    node: string,
    endpoint: { readonly host: string; readonly port: number },
    snapshot: NodeSnapshot,
    options: ObserveOptions & { readonly early?: EarlyObservation; readonly scope?: PassScope } = {},
  ): Promise<NodeRuntime> {
    const { scope } = options;
    const desired = toHaproxyRuntime(snapshot, scope?.tenants);
    const names = scope === undefined ? undefined : scopeNames(snapshot, scope);
    let first: Observation;
    if (names !== undefined) {
      const results = await this.executor(node, endpoint).execute(scopedObserveCommands(desired.capsMap.file, names), {
        timeoutMs: this.options.observeTimeoutMs,
      });
      first = readScopedObservation(names, results);
    } else {
      const target = observationTarget(desired);
      // A read begun on a guess of another map (the node's configDir moved) observed the wrong file.
      const early = options.early?.target.mapFile === target.mapFile ? options.early : undefined;
      first = await (early ?? this.startObservation(node, endpoint, target, options)).observation;
    }
    const observation = await this.complete(this.executor(node, endpoint), desired, first);
    if (!observation.ok) return { desired, observation, plan: null, ...(names && { read: names }) };
    return {
      ...(names && { read: names }),
      desired,
      observation,
      plan: planRuntime(desired, observation.observed, commandBuilders, {
        drainTimeoutMs: this.options.drainTimeoutMs,
      }),
    };
  }

  /**
   * A second, small batch when the first left something out: the sessions of servers being taken
   * out (they decide the next step), and certificates an early read did not know to ask about.
   */
  private async complete(
    executor: RuntimeExecutor,
    desired: DesiredRuntime,
    observation: Observation,
  ): Promise<Observation> {
    if (!observation.ok) return observation;
    const sessions = sessionReads(desired, observation);
    const certificates = certificateReads(desired, observation);
    if (sessions.length === 0 && certificates.length === 0) return observation;
    const commands = [...sessions.map((r) => r.command), ...certificates.map((file) => showSslCert(file))];
    const results = await executor.execute(commands, { timeoutMs: this.options.observeTimeoutMs });
    const withSessionsRead = withSessions(observation, sessions, results.slice(0, sessions.length));
    return withSessionsRead.ok
      ? withCertificates(withSessionsRead, certificates, results.slice(sessions.length))
      : withSessionsRead;
  }
}

/** What a scoped pass reads: the objects the scope's tenants have now, and those they had (removed ones included). */
function scopeNames(snapshot: NodeSnapshot, scope: PassScope): RuntimeScope {
  const { configDir } = haproxyNodeSettings(snapshot.node);
  const frontends = new Set<string>();
  const backends = new Set<string>();
  const mapKeys = new Set<string>();
  const certificateFiles = new Set<string>();
  for (const t of [...scope.previous, ...scope.current]) {
    const names = tenantRuntimeNames(t, configDir);
    for (const n of names.frontends) frontends.add(n);
    for (const n of names.backends) backends.add(n);
    for (const n of names.mapKeys) mapKeys.add(n);
    for (const n of names.certificateFiles) certificateFiles.add(n);
  }
  const sorted = (xs: Set<string>) => [...xs].sort();
  return {
    frontends: sorted(frontends),
    backends: sorted(backends),
    mapKeys: sorted(mapKeys),
    certificateFiles: sorted(certificateFiles),
  };
}
