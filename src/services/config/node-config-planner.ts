import { NotFoundError } from '../../domain/errors.js';
import type { CapacityModel } from '../../domain/capacity.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import { KEEPALIVED_FILES } from '../../domain/config-files.js';
import type { NodeKind, ProxyNode } from '../../domain/node.js';
import type { RuntimeTlsMaterial } from '../../domain/runtime-tls.js';
import {
  joinSegments,
  type NodeSettings,
  type NodeSnapshot,
  type RenderedFiles,
  type TenantSnapshot,
} from '../../domain/snapshot.js';
import type { HeldTenant } from '../../db/config-repository.js';
import type { Db } from '../../db/connect.js';
import { loadDesiredState, tenantsOn, type DesiredState, type TenantState } from '../../db/desired-state-repository.js';
import type { Logger } from '../../logger.js';
import type { KeepalivedService } from '../keepalived-service.js';
import type { SecretBox } from '../secret-box.js';
import type { ConfigStore } from './config-store.js';
import { DesiredStateCache } from './desired-state-cache.js';
import { holdAtRunningState, type NodeHolds } from './hold-at-running-state.js';
import { renderAndValidate, renderSegmentsOrRefusal, type KindRenderer, type Verdict } from './kind-renderer.js';
import { LastGoodStates } from './last-good-states.js';
import { planServedStates, type HashedState, type ServedStatesPlan } from './plan-served-states.js';
import { withReloadGeneration } from './reload-generation.js';
import { RenderStateCache, type RenderStates } from './render-state-cache.js';
import { ServedHistory } from './served-history.js';
import { structureHashes } from './structure-hashes.js';
import { TenantMemo } from './tenant-memo.js';
import { TenantSnapshots } from './tenant-snapshots.js';
import { withholdKeys } from './withhold-keys.js';
import { AlignedMemo } from '../../util/aligned.js';
import { byString } from '../../util/sort.js';

/** Where a node's Runtime API certificate, key and trusted CAs come from. */
export interface RuntimeTlsSource {
  nodeMaterial(node: string): Promise<RuntimeTlsMaterial | null>;
}

/** What a node with given settings would be served now: its snapshot after holding, files and structure (see `renderPlanned`). */
export type PlannedConfig = Awaited<ReturnType<NodeConfigPlanner['renderPlanned']>>;

/** Tenants new to a node's lineup above which it looks every tenant up once instead. */
const MAX_UNVALIDATED = 2_000;

/** What the planner is handed by the ConfigService that owns it. */
export interface NodeConfigPlannerDeps {
  readonly db: Db;
  readonly box: SecretBox;
  /** For content hashes: the store memoizes each segment's digest, which its insert reuses. */
  readonly store: ConfigStore;
  readonly keepalived: KeepalivedService;
  readonly renderers: Readonly<Record<NodeKind, KindRenderer>>;
  readonly logger: Logger;
  readonly capacity: CapacityModel;
  readonly runtimeTls?: RuntimeTlsSource | undefined;
  currentRevision(): Promise<number>;
}

/**
 * What each node would be served, stored nowhere: the desired state with per-tenant holding
 * (a tenant the validator refuses at its last good state, one whose listeners the node could not
 * bind at what the node runs), rendered and hashed. Keeps what makes a one-tenant change cost one
 * tenant's work among thousands: the desired state brought forward incrementally, the kind's
 * render states, last good states, snapshots per state and node, and what each node's builds served.
 */
export class NodeConfigPlanner {
  /** Hashes, structures and objects of unchanged tenants, carried from one load to the next. */
  private readonly memo = new TenantMemo();
  /** The desired state, brought forward by reading only what changed. */
  private readonly states: DesiredStateCache;
  /** Last validated states by hash, so a runtime pass reads them from the database only once per version. */
  private readonly goods: LastGoodStates;
  /** Each tenant's render state per kind, kept current by this process's builds. */
  private readonly renderStates: RenderStateCache;
  /**
   * Per node, the settings its whole config last validated with. Builds validate only the tenants
   * that changed; the whole file is checked again only when what every tenant's part sits in
   * (global and defaults sections: the node's settings) changed, or once after a start.
   */
  private readonly validatedSettings = new Map<string, string>();
  /** Snapshots per stored state and node, so a build's several renders reuse the renderers' fragment caches. */
  private readonly snapshots: TenantSnapshots;
  /** Per node, the tenant states of its last stored versions (and the one it runs). */
  private readonly servedHistory = new ServedHistory();
  /** Per node, the tenants its last build held for listeners the node could not bind, and the state served (null: left out). */
  private readonly reloadHeld = new Map<string, ReadonlyMap<string, TenantState | null>>();
  /** Per node, its Runtime API material and the whole read of the desired state it was read after. */
  private readonly runtimeTls = new Map<
    string,
    { readonly epoch: number; readonly material: RuntimeTlsMaterial | null }
  >();
  /** Per node, its tenants with their hashes and those whose render state differs (see `lineUp`). */
  private readonly lineups = new Map<
    string,
    { readonly hashed: AlignedMemo<TenantState, HashedState>; readonly unvalidated: Map<string, HashedState> }
  >();

  constructor(private readonly deps: NodeConfigPlannerDeps) {
    this.states = new DesiredStateCache(deps.db, this.memo);
    this.renderStates = new RenderStateCache(deps.db);
    this.goods = new LastGoodStates(deps.db, this.memo);
    this.snapshots = new TenantSnapshots(deps.box, deps.capacity);
  }

  /**
   * A tenant's part alone, as a node of `kind` would get it, validated by the real binary.
   * Private keys are withheld from the answer (the validation used them).
   */
  async preview(
    tenantId: string,
    kind: NodeKind,
  ): Promise<{ files: RenderedFiles; validation: Verdict; revision: number }> {
    const state = await loadDesiredState(this.deps.db, {
      tenantIds: [tenantId],
      states: ['active', 'pending_approval', 'suspended'],
    });
    const tenant = state.tenants[0];
    if (!tenant) throw new NotFoundError('tenant', tenantId);
    const node: NodeSettings = {
      name: 'preview',
      kind,
      runtimeAddress: null,
      capacity: tenant.tenant.limit,
      configDir: '/etc/switchyard',
    };
    const snapshot: NodeSnapshot = { revision: state.revision, node, tenants: [this.snapshots.of(tenant, node)] };
    const renderer = this.deps.renderers[kind];
    let files: RenderedFiles;
    try {
      files = renderer.render(snapshot);
    } catch (err) {
      return { files: {}, validation: { ok: false, message: (err as Error).message }, revision: state.revision };
    }
    return { files: withholdKeys(files), validation: await renderer.validate(snapshot), revision: state.revision };
  }

  /**
   * Renders what a node with these settings would run if it served every active tenant, with the
   * same per-tenant holding as a node build, without storing anything (the `switchyard render`
   * command without --node, which names no node and so has no placement).
   */
  async renderFor(
    settings: NodeSettings,
  ): Promise<{ files: RenderedFiles; revision: number; heldTenants: HeldTenant[] }> {
    const { files, revision, plan } = await this.renderPlanned(settings, undefined, { everyTenant: true });
    return { files, revision, heldTenants: plan.held };
  }

  /**
   * What a node's runtime (HAProxy's Runtime API, NGINX's runtime channel) should hold now,
   * without waiting for the validator (whose run is most of a build's time). Each tenant is at its
   * current state when that state was validated already, or differs from its last validated one
   * only in what the runtime changes; at its last validated state while the validator refuses its
   * current one (the node's files hold that); left out when it has none and was refused.
   *
   * Any other tenant is unsettled: its current state awaits its first validation, or one that
   * changes its structure. The build the node's agent loads next may have validated it already (a
   * build commits before this process records it, and another replica's builds are recorded here
   * only at the next whole read), so the node may hold either state: pushing the last validated
   * one, or taking the tenant out, would set a node that runs the new part back until the next
   * pass. Unsettled tenants are listed apart and runtime pushes leave them alone; the pass after
   * the build plans them.
   */
  async runtimeSnapshot(settings: NodeSettings, atLeast?: number): Promise<NodeSnapshot> {
    // Two reads side by side, one round trip: the state (shared by every node a change wakes) and
    // the kind's render states without their good states, which are rarely needed.
    const [state, known, withTls] = await Promise.all([
      this.desiredState(atLeast),
      this.renderStates.summaries(settings.kind),
      this.withRuntimeTls(settings),
    ]);
    settings = withTls;
    const served = tenantsOn(state, settings.name);
    const goods = await this.goods.differingFrom(settings.kind, served, known);
    const heldHere = this.reloadHeld.get(settings.name);
    const snapshotOf = this.snapshots.forNode(settings);
    const tenants: TenantSnapshot[] = [];
    const unsettled: TenantSnapshot[] = [];
    for (const t of served) {
      if (heldHere?.has(t.tenant.id) === true) {
        // Held for a listener the node cannot bind: the live process keeps the state it runs.
        const ran = heldHere.get(t.tenant.id)!;
        if (ran !== null) tenants.push(snapshotOf(ran));
        continue;
      }
      const k = known.get(t.tenant.id);
      if (k === undefined || k.goodHash === null) {
        // Never validated: refused, it is in no file; else its first validation may be in the next one.
        if (k?.error == null) unsettled.push(snapshotOf(t));
        continue;
      }
      if (k.goodHash === this.memo.hash(t)) {
        tenants.push(snapshotOf(t));
        continue;
      }
      const good = goods.get(t.tenant.id)!;
      if (k.error !== null) tenants.push(snapshotOf(good));
      else if (this.memo.structure(t, settings.kind) === this.memo.structure(good, settings.kind))
        tenants.push(snapshotOf(t));
      else unsettled.push(snapshotOf(t), snapshotOf(good));
    }
    return { revision: state.revision, node: settings, tenants, ...(unsettled.length > 0 && { unsettled }) };
  }

  /**
   * What a node with these settings would be served, with per-tenant holding, stored nowhere: the
   * snapshot (after holding), its files and structure. From `state` when given (a dry run's
   * uncommitted state), else from the database. The node serves the tenants placed on it, or
   * every active tenant with `everyTenant`. A `reloadGeneration` above 0 (reloads the reconciler
   * asked for) is part of the structural hash: each new one makes the node's agent reload. Given
   * the registered `node`, its keepalived.conf joins the files when it has VRRP settings (rendered
   * from committed placement, even for a dry run's state).
   */
  async renderPlanned(
    settings: NodeSettings,
    state?: DesiredState,
    opts: {
      everyTenant?: boolean;
      reloadGeneration?: number;
      node?: ProxyNode;
      holds?: NodeHolds;
      /** Runs each validation (the real binary): a build gives its turn up meanwhile (ConfigService). */
      validating?: <T>(run: () => Promise<T>) => Promise<T>;
    } = {},
  ) {
    const committed = state === undefined;
    state ??= await this.desiredState();
    settings = await this.withRuntimeTls(settings, { sinceWholeRead: committed });
    const served = opts.everyTenant === true ? state.tenants : tenantsOn(state, settings.name);
    const renderer = this.deps.renderers[settings.kind];
    const known = await this.renderStates.summaries(settings.kind);
    const { current, mayDiffer } =
      opts.everyTenant === true
        ? { current: served.map(this.hashed), mayDiffer: undefined }
        : this.lineUp(settings.name, served, known);
    const plan = await this.planServed(renderer, settings, state.revision, current, known, mayDiffer, opts.validating);
    const nodeName = settings.name;
    const holding =
      opts.holds === undefined
        ? null
        : holdAtRunningState(plan.served, opts.holds, (hash) => this.servedHistory.servedAt(nodeName, hash));
    if (holding !== null)
      this.deps.logger.warn(
        { node: nodeName, tenants: holding.held.map((x) => x.tenant) },
        'tenants held on the node: their new listeners could not be bound there',
      );
    const servedStates = holding?.served ?? plan.served;
    const snapshot: NodeSnapshot = {
      revision: state.revision,
      node: settings,
      tenants: this.snapshots.listFor(settings, servedStates),
    };
    const runtime = settings.runtimeAddress !== null;
    const generation = opts.reloadGeneration ?? 0;
    // Holding a tenant at another state than the validated one renders the node anew (from the renderers' fragment caches).
    let proxySegments = (holding?.changed !== true && plan.segments) || renderer.renderSegments(snapshot);
    if (runtime && generation > 0) proxySegments = withReloadGeneration(proxySegments, generation);
    const keepalived = opts.node === undefined ? null : await this.deps.keepalived.render(opts.node);
    const segments =
      keepalived === null ? proxySegments : { ...proxySegments, [KEEPALIVED_FILES.config]: [keepalived] };
    const contentHash = this.deps.store.contentHash(segments, settings.name);
    // Without a Runtime API every change to the proxy's files is a reload: the structure is their
    // content, and parts would only say what changed, not why it needs one.
    const { structuralHash, structuralParts } = runtime
      ? structureHashes(snapshot, generation)
      : {
          structuralHash: keepalived === null ? contentHash : this.deps.store.contentHash(proxySegments, settings.name),
          structuralParts: () => ({}),
        };
    let joined: RenderedFiles | undefined;
    return {
      segments,
      /** The joined files, joined when first asked for (a build stores the segments). */
      get files(): RenderedFiles {
        return (joined ??= joinSegments(segments));
      },
      contentHash,
      revision: state.revision,
      plan,
      /** Validation holds (plan.held) and holds for listeners the node could not bind, as stored with the version. */
      heldTenants: [...plan.held, ...(holding?.held ?? [])],
      servedStates,
      holding,
      structuralHash,
      structuralParts,
      snapshot,
    };
  }

  /**
   * What a committed build of the node served: remembered for holding its tenants at what it runs,
   * for its runtime snapshots, and as the kind's newly validated states (which runtime passes then
   * compare with from memory instead of reading them back).
   */
  recordBuilt(nodeName: string, kind: NodeKind, rendered: PlannedConfig, appliedHash: string | null): Promise<void> {
    const { plan, holding, revision } = rendered;
    this.servedHistory.remember(nodeName, rendered.contentHash, rendered.servedStates, appliedHash);
    this.reloadHeld.set(nodeName, holding?.states ?? new Map());
    for (const t of plan.good) this.goods.remember(kind, t.state.tenant.id, t.hash, t.state);
    return this.renderStates.recorded(
      kind,
      plan.good.map((t) => ({ tenant: t.state.tenant.id, hash: t.hash, revision })),
      plan.held.map((h) => ({ tenant: h.tenant, error: h.error })),
    );
  }

  /**
   * Which state of each tenant the node serves (see planServedStates): rendered with the node's
   * snapshots, validated by its kind's binary, the whole file checked when the node's settings
   * changed since they last validated (or once after a start).
   */
  private async planServed(
    renderer: KindRenderer,
    settings: NodeSettings,
    revision: number,
    current: readonly HashedState[],
    known: RenderStates,
    mayDiffer: readonly HashedState[] | undefined,
    validating: <T>(run: () => Promise<T>) => Promise<T> = (run) => run(),
  ): Promise<ServedStatesPlan> {
    const snapshotFor = this.snapshots.forNode(settings);
    const snapshotOf = (states: readonly TenantState[]): NodeSnapshot => ({
      revision,
      node: settings,
      tenants: states.map(snapshotFor),
    });
    const settingsKey = canonicalJson(settings);
    const plan = await planServedStates(
      {
        current,
        mayDiffer,
        known,
        whole: this.validatedSettings.get(settings.name) !== settingsKey,
        // Both kinds: what their structure leaves out is in no file the binary reads (HAProxy's
        // Runtime API state, NGINX's runtime-state.jsonl), so `-c`/`-t` has nothing new to check.
        runtimeChangesNeedNoBinary: true,
      },
      {
        // The whole node's list, lined up with its last one: unchanged tenants cost nothing.
        render: (states) =>
          renderSegmentsOrRefusal(renderer, {
            revision,
            node: settings,
            tenants: this.snapshots.listFor(settings, states),
          }),
        validate: (states) => {
          const snapshot = snapshotOf(states);
          return validating(() => renderAndValidate(renderer, snapshot));
        },
        goodStates: (tenants) => this.goods.of(settings.kind, tenants, known),
        structure: (state) => this.memo.structure(state, settings.kind),
      },
    );
    if (plan.settingsValidated) this.validatedSettings.set(settings.name, settingsKey);
    for (const h of plan.held)
      this.deps.logger.warn({ tenant: h.tenant, error: h.error }, 'tenant held at its last good state');
    return plan;
  }

  /** A tenant's state with its hash. */
  private readonly hashed = (t: TenantState): HashedState => ({ state: t, hash: this.memo.hash(t) });

  /**
   * The node's tenants hashed, lined up with its last list (`mapAligned`), and those whose render
   * state differs from their current hash. A tenant that sat in the last list at the same state
   * either was among those then or did not differ, so only the tenants that came in new since (a
   * change, an addition) and those that differed last time are looked up, not the node's 10,000.
   * Whatever list it is handed (a dry run's too), everything not in the last one is new to it.
   */
  private lineUp(
    nodeName: string,
    served: readonly TenantState[],
    known: RenderStates,
  ): { current: readonly HashedState[]; mayDiffer: readonly HashedState[] } {
    let lineup = this.lineups.get(nodeName);
    if (lineup === undefined)
      this.lineups.set(nodeName, (lineup = { hashed: new AlignedMemo(this.hashed), unvalidated: new Map() }));
    const { out, fresh, gone } = lineup.hashed.map(served);
    const { unvalidated } = lineup;
    for (const g of gone) unvalidated.delete(g.tenant.id);
    for (const i of fresh) unvalidated.set(out[i]!.state.tenant.id, out[i]!);
    const differs = (c: HashedState) => known.get(c.state.tenant.id)?.goodHash !== c.hash;
    if (unvalidated.size > MAX_UNVALIDATED) {
      // Every tenant is new (the node's first build here): each one looked up once.
      unvalidated.clear();
      for (const c of out) if (differs(c)) unvalidated.set(c.state.tenant.id, c);
    } else for (const [id, c] of unvalidated) if (!differs(c)) unvalidated.delete(id);
    const mayDiffer = [...unvalidated.values()].sort((a, b) => byString(a.state.tenant.id, b.state.tenant.id));
    return { current: out, mayDiffer };
  }

  /**
   * The desired state at the current revision, loaded once however many nodes ask for it at the
   * same time (a change wakes every node at once).
   */
  private desiredState(atLeast?: number): Promise<DesiredState> {
    return this.states.get(() => this.deps.currentRevision(), atLeast);
  }

  /**
   * The settings with the node's Runtime API certificate, when it has a listener for one (a
   * HAProxy node with a Runtime API or master CLI address). Settings that already say (a
   * render for no node) are kept as they are.
   */
  private async withRuntimeTls(settings: NodeSettings, opts: { sinceWholeRead?: boolean } = {}): Promise<NodeSettings> {
    if (settings.runtimeTls !== undefined) return settings;
    const listens = settings.runtimeAddress !== null || (settings.masterAddress ?? null) !== null;
    if (!listens || this.deps.runtimeTls === undefined) return { ...settings, runtimeTls: null };
    // A renewal (or a new CA) is a change that names no tenant, so the desired state is read whole
    // after it: material read since the last whole read is current. Builds, which read the state
    // first, reuse it (two queries less per build); runtime passes read it beside the state.
    const epoch = this.states.reads.whole;
    const cached = this.runtimeTls.get(settings.name);
    if (opts.sinceWholeRead === true && cached?.epoch === epoch) return { ...settings, runtimeTls: cached.material };
    const material = await this.deps.runtimeTls.nodeMaterial(settings.name);
    this.runtimeTls.set(settings.name, { epoch, material });
    return { ...settings, runtimeTls: material };
  }
}
