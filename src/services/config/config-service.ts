import { NotFoundError, UpstreamError } from '../../domain/errors.js';
import { DEFAULT_CAPACITY_MODEL, toResourceVector, type CapacityModel } from '../../domain/capacity.js';
import type { NodeKind, ProxyNode } from '../../domain/node.js';
import { joinSegments, type NodeSettings, type NodeSnapshot, type RenderedFiles, type SegmentedFiles, type TenantSnapshot } from '../../domain/snapshot.js';
import type { Db } from '../../db/connect.js';
import * as configs from '../../db/config-repository.js';
import type { HeldTenant } from '../../db/config-repository.js';
import { loadDesiredState, tenantsOn, type DesiredState, type TenantState } from '../../db/desired-state-repository.js';
import { findNode } from '../../db/node-repository.js';
import type { SealedCertificate } from '../../db/certificate-repository.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import type { KindRenderer, Verdict } from './kind-renderer.js';
import { SecretBox } from '../secret-box.js';
import { ConfigStore } from './config-store.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import { TenantMemo } from './tenant-memo.js';
import { ValidatedStates } from './validated-states.js';
import { DesiredStateCache } from './desired-state-cache.js';
import { RenderStateCache } from './render-state-cache.js';
import { structureHashes } from './structure-hashes.js';
import type { RuntimeTlsMaterial } from '../../domain/runtime-tls.js';
import { KeepalivedService } from '../keepalived-service.js';
import { KEEPALIVED_FILES } from '../../domain/config-files.js';
import * as reloadHolds from '../../db/reload-hold-repository.js';
import type { ReloadHold } from '../../db/reload-hold-repository.js';

/** What a node is told to run. */
export interface NodeConfig {
  readonly node: string;
  readonly kind: NodeKind;
  /** The desired-state revision these files reflect. */
  readonly revision: number;
  /** SHA-256 over file names and their segments' keyed digests (ConfigStore.contentHash): the ETag agents poll with. */
  readonly contentHash: string;
  /**
   * Changes only when the new files need a proxy reload; otherwise the Runtime API has already made
   * the change live and the agent just writes the files. On NGINX nodes, the hash of the proxy's
   * files (keepalived.conf left out: a VRRP change reloads keepalived, not the proxy).
   */
  readonly structuralHash: string;
  readonly files: RenderedFiles;
  /** Tenants served at an older state (or left out) because their current state failed validation. */
  readonly heldTenants: readonly HeldTenant[];
  readonly createdAt: string;
}

/** A stored build and the snapshot it was rendered from (private keys included: never answered to a client). */
export interface ServedConfig {
  readonly config: NodeConfig;
  readonly snapshot: NodeSnapshot;
  /** When the next tenant held on the node for a listener it could not bind is tried again (ms since the epoch), or null. */
  readonly retryHeldAt?: number | null;
}

const VERSIONS_KEPT = 20;
/** Served states remembered per node (besides the one it runs), for holding a tenant at what the node runs. */
const SERVED_VERSIONS_KEPT = 8;

/** The reload holds of a node and what it runs, read at the start of its build. */
export interface NodeHolds {
  readonly holds: readonly ReloadHold[];
  readonly appliedHash: string | null;
  readonly appliedRevision: number | null;
  readonly now: number;
}

interface HoldOutcome {
  readonly served: TenantState[];
  readonly held: HeldTenant[];
  /** Running states worked out by this build, to record with the hold. */
  readonly learned: { tenant: string; state: TenantState | null }[];
  readonly states: ReadonlyMap<string, TenantState | null>;
  readonly changed: boolean;
  /** The earliest retry of an active hold (ms since the epoch). */
  readonly retryAt: number;
}

/** Whether the tenant's current state still binds one of the listeners its hold is for. */
function stillWanted(t: TenantState, hold: ReloadHold): boolean {
  return hold.listeners.some((l) => t.vips.some((v) => v.name === l.vip && v.address === l.address && v.port === l.port));
}

/** A tenant's state without some VIPs (and so their routes): a held tenant when what the node runs is unknown here. */
function withoutVips(t: TenantState, vips: ReadonlySet<string>): TenantState {
  return { ...t, vips: t.vips.filter((v) => !vips.has(v.name)) };
}

/** Where a node's Runtime API certificate, key and trusted CAs come from. */
export interface RuntimeTlsSource {
  nodeMaterial(node: string): Promise<RuntimeTlsMaterial | null>;
}

/** The part of the change feed a long poll needs: a callback per committed revision. */
export interface ChangeSource {
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}

/**
 * Turns the desired state into each node's files, proven by the real binary before they are
 * stored. One tenant's part that the proxy refuses holds only that tenant at its last good state
 * (or leaves it out when it never had one) and is flagged; everyone else's changes go out.
 */
export class ConfigService {
  private readonly box: SecretBox;
  /** Stored versions, segment by segment: a one-tenant change stores and hashes one tenant's part. */
  private readonly store: ConfigStore;
  private readonly building = new Map<string, Promise<ServedConfig>>();
  private readonly queued = new Map<string, Promise<ServedConfig>>();
  /** Long polls waiting for a node's next stored build, woken when it is stored. */
  private readonly storedListeners = new Map<string, Set<() => void>>();
  /** Aborted when the process stops: long polls answer at once instead of holding shutdown for their wait. */
  private readonly closing = new AbortController();
  /** Hashes, structures and objects of unchanged tenants, carried from one load to the next. */
  private readonly memo = new TenantMemo();
  /** The desired state, brought forward by reading only what changed. */
  private readonly states: DesiredStateCache;
  /** Last validated states by hash, so a runtime pass reads them from the database only once per version. */
  private readonly validated = new ValidatedStates();
  /** Each tenant's render state per kind, kept current by this process's builds. */
  private readonly renderStates: RenderStateCache;
  /**
   * Per node, the settings its whole config last validated with. Builds validate only the tenants
   * that changed; the whole file is checked again only when what every tenant's part sits in
   * (global and defaults sections: the node's settings) changed, or once after a start.
   */
  private readonly validatedSettings = new Map<string, string>();
  /** Snapshots per stored state, kind and caps, so a build's several renders reuse the renderers' fragment caches. */
  private readonly snapshots = new WeakMap<TenantState, Map<string, TenantSnapshot>>();
  /**
   * Per node, the tenant states of its last stored versions by content hash (and the one it runs):
   * what a node that applied a version runs, for holding a tenant there at that state.
   */
  private readonly servedHistory = new Map<string, { readonly hash: string; readonly states: readonly TenantState[] }[]>();
  /** Per node, the tenants its last build held for listeners the node could not bind, and the state served (null: left out). */
  private readonly reloadHeld = new Map<string, ReadonlyMap<string, TenantState | null>>();
  /** Per node, each state's snapshot there (the caps depend on the node and its settings). */
  private readonly nodeSnapshots = new Map<string, { readonly settingsKey: string; readonly byState: WeakMap<TenantState, TenantSnapshot> }>();
  /** Each VRRP node's keepalived.conf, rendered beside its proxy files. */
  private readonly keepalived: KeepalivedService;

  constructor(
    private readonly db: Db,
    secretKey: Buffer,
    private readonly renderers: Readonly<Record<NodeKind, KindRenderer>>,
    private readonly logger: Logger,
    private readonly changes: ChangeSource,
    private readonly metrics?: Metrics,
    private readonly capacity: CapacityModel = DEFAULT_CAPACITY_MODEL,
    /** Each HAProxy node's Runtime API certificate (FleetPki); absent: nodes get no mTLS listener. */
    private readonly runtimeTls?: RuntimeTlsSource,
  ) {
    this.box = new SecretBox(secretKey);
    this.keepalived = new KeepalivedService(db, this.box, logger);
    // The newest version of each node is what agents fetch: a few joined versions in memory (10 MB each at 10,000 tenants).
    this.store = new ConfigStore(db, secretKey, { logger, maxCachedVersions: 4 });
    this.states = new DesiredStateCache(db, this.memo);
    this.renderStates = new RenderStateCache(db);
  }

  /** The node's current config: the stored version when it is up to date, else a fresh build. */
  async forNode(nodeName: string): Promise<NodeConfig> {
    const latest = await configs.latestConfigVersion(this.db, nodeName, { files: false });
    const revision = await this.currentRevision();
    if (latest && latest.revision >= revision) return this.open(latest, await this.requireNode(nodeName));
    return this.build(nodeName);
  }

  /**
   * The newest config already built for the node, without building; a build when none was ever
   * stored. What a long poll that timed out answers: never a wait on builds still to come.
   */
  async latestBuilt(nodeName: string): Promise<NodeConfig> {
    const latest = await configs.latestConfigVersion(this.db, nodeName, { files: false });
    return latest ? this.open(latest, await this.requireNode(nodeName)) : this.build(nodeName);
  }

  /**
   * Long poll: the node's config as soon as its content hash differs from `knownHash`, or null when
   * `waitMs` passes (or `signal` aborts) first. The newest config already built is answered at once
   * when it differs, even while later writes are still being built: under a stream of writes an
   * agent keeps applying what exists instead of waiting for builds that never catch up. When the
   * built config is the agent's and writes are pending, a build is set going (unless one is
   * already) and the poll wakes when any build of the node is stored, never waiting on one build
   * in particular (under a stream, the next build is always about to start). Also woken by
   * committed writes, and re-checked at most every second (builds on another replica).
   */
  async waitForChange(nodeName: string, knownHash: string, waitMs: number, signal?: AbortSignal): Promise<NodeConfig | null> {
    const deadline = Date.now() + waitMs;
    const node = await this.requireNode(nodeName);
    for (;;) {
      const latest = await configs.latestConfigVersion(this.db, nodeName, { files: false });
      if (latest && latest.contentHash !== knownHash) return this.open(latest, node);
      if (Date.now() >= deadline || signal?.aborted === true || this.closing.signal.aborted) return null;
      if (!latest || latest.revision < (await this.currentRevision())) this.ensureBuilding(nodeName);
      await new Promise<void>((resolve) => {
        const listeners = this.storedListeners.get(nodeName) ?? new Set<() => void>();
        this.storedListeners.set(nodeName, listeners);
        const done = () => {
          clearTimeout(timer);
          this.changes.off('change', done);
          listeners.delete(done);
          if (listeners.size === 0 && this.storedListeners.get(nodeName) === listeners) this.storedListeners.delete(nodeName);
          signal?.removeEventListener('abort', done);
          this.closing.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, Math.min(deadline - Date.now(), 1000)));
        listeners.add(done);
        this.changes.on('change', done);
        signal?.addEventListener('abort', done);
        this.closing.signal.addEventListener('abort', done);
      });
    }
  }

  /** Starts a build of the node unless one is running here; a failure is logged (the poll goes on with what is stored). */
  private ensureBuilding(nodeName: string): void {
    if (this.building.has(nodeName)) return;
    this.buildServed(nodeName).catch((err: unknown) => this.logger.warn({ node: nodeName, err }, 'config build for a long poll failed'));
  }

  /** Deletes stored config segments that no kept version references; answers how many (the retention job runs it). */
  sweepSegments(): Promise<number> {
    return this.store.sweep();
  }

  /**
   * The structure a node runs that applied these contents (its newest stored version with them):
   * hash and labelled parts, which say what a reload is for. Undefined when no such version is stored.
   */
  async runningStructure(nodeName: string, contentHash: string): Promise<{ structuralHash: string; structuralParts: Record<string, string> } | undefined> {
    const found = await configs.structureOfVersion(this.db, nodeName, contentHash);
    if (found === undefined) return undefined;
    const structuralParts = found.structureChunks === null ? found.structuralParts : await this.store.openStructure(found.structureChunks);
    return { structuralHash: found.structuralHash, structuralParts };
  }

  /** Ends every long poll now (they answer with what they have); called when the process stops. */
  close(): void {
    this.closing.abort();
  }

  /** Builds, validates and stores the node's config now. Concurrent calls for one node share one build. */
  async build(nodeName: string): Promise<NodeConfig> {
    return (await this.buildServed(nodeName)).config;
  }

  /** `build`, also answering the snapshot the files were rendered from (what runtime planning compares with). */
  buildServed(nodeName: string): Promise<ServedConfig> {
    const running = this.building.get(nodeName);
    if (running) {
      // A build that started before the caller's write may not include it: chain one more after it.
      // Concurrent callers share that next build, so a burst of writes still gives two builds, not N.
      const queued = this.queued.get(nodeName);
      if (queued) return queued;
      const next = running.catch(() => undefined).then(() => {
        this.queued.delete(nodeName);
        return this.buildServed(nodeName);
      });
      this.queued.set(nodeName, next);
      return next;
    }
    const started = this.buildNow(nodeName).finally(() => this.building.delete(nodeName));
    this.building.set(nodeName, started);
    return started;
  }

  /**
   * A tenant's part alone, as a node of `kind` would get it, validated by the real binary.
   * Private keys are withheld from the answer (the validation used them).
   */
  async preview(tenantId: string, kind: NodeKind): Promise<{ files: RenderedFiles; validation: Verdict; revision: number }> {
    const state = await loadDesiredState(this.db, { tenantIds: [tenantId], states: ['active', 'pending_approval', 'suspended'] });
    const tenant = state.tenants[0];
    if (!tenant) throw new NotFoundError('tenant', tenantId);
    const node: NodeSettings = {
      name: 'preview',
      kind,
      runtimeAddress: null,
      capacity: tenant.tenant.limit,
      configDir: '/etc/switchyard',
    };
    const snapshot: NodeSnapshot = { revision: state.revision, node, tenants: [this.tenantSnapshot(tenant, node)] };
    const renderer = this.renderers[kind];
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
  async renderFor(settings: NodeSettings): Promise<{ files: RenderedFiles; revision: number; heldTenants: HeldTenant[] }> {
    const { files, revision, plan } = await this.renderPlanned(settings, undefined, { everyTenant: true });
    return { files, revision, heldTenants: plan.held };
  }

  /**
   * What a HAProxy node's Runtime API should hold now, without waiting for the validator (whose
   * run is most of a build's time): each tenant at its current state when that state was validated
   * already, or differs from its last validated one only in what the Runtime API changes; otherwise
   * (or while the tenant is held) at its last validated state, and left out if it has none. The
   * build that follows validates for real; should it hold a tenant back, the next pass plans from it.
   */
  async runtimeSnapshot(settings: NodeSettings, atLeast?: number): Promise<NodeSnapshot> {
    // Two reads side by side, one round trip: the state (shared by every node a change wakes) and
    // the kind's render states without their good states, which are rarely needed.
    const [state, known, withTls] = await Promise.all([this.desiredState(atLeast), this.renderStates.summaries(settings.kind), this.withRuntimeTls(settings)]);
    settings = withTls;
    const served = tenantsOn(state, settings.name);
    const goods = await this.goodStatesFor(settings.kind, served, known);
    const heldHere = this.reloadHeld.get(settings.name);
    const tenants: TenantSnapshot[] = [];
    for (const t of served) {
      if (heldHere?.has(t.tenant.id) === true) {
        // Held for a listener the node cannot bind: the live process keeps the state it runs.
        const ran = heldHere.get(t.tenant.id)!;
        if (ran !== null) tenants.push(this.tenantSnapshot(ran, settings));
        continue;
      }
      const k = known.get(t.tenant.id);
      if (k === undefined || k.goodHash === null) continue;
      if (k.goodHash === this.memo.hash(t)) {
        tenants.push(this.tenantSnapshot(t, settings));
        continue;
      }
      const good = goods.get(t.tenant.id)!;
      const runtimeOnly = k.error === null && this.memo.structure(t) === this.memo.structure(good);
      tenants.push(this.tenantSnapshot(runtimeOnly ? t : good, settings));
    }
    return { revision: state.revision, node: settings, tenants };
  }

  /**
   * The last validated state of each tenant whose current state differs from it (the runtime
   * snapshot compares their structures, or serves the validated one): from memory when this
   * version was seen before, else read from the database in one more round trip.
   */
  private async goodStatesFor(kind: NodeKind, served: readonly TenantState[], known: ReadonlyMap<string, configs.RenderStateSummary>): Promise<Map<string, TenantState>> {
    this.validated.retain(kind, known);
    const out = new Map<string, TenantState>();
    const missing: string[] = [];
    for (const t of served) {
      const goodHash = known.get(t.tenant.id)?.goodHash ?? null;
      if (goodHash === null || goodHash === this.memo.hash(t)) continue;
      const good = this.validated.get(kind, t.tenant.id, goodHash);
      if (good === undefined) missing.push(t.tenant.id);
      else out.set(t.tenant.id, good);
    }
    for (const [tenant, { hash, state: good }] of await configs.goodStates(this.db, kind, missing)) {
      this.validated.remember(kind, tenant, hash, good as TenantState);
      out.set(tenant, good as TenantState);
    }
    for (const tenant of missing) {
      // Recorded again between the two reads: the next pass, woken by that build's effects or the timer, sees it.
      if (!out.has(tenant)) throw new Error(`the validated state of tenant ${tenant} changed while it was read; retrying`);
    }
    return out;
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
    opts: { everyTenant?: boolean; reloadGeneration?: number; node?: ProxyNode; holds?: NodeHolds } = {},
  ) {
    state ??= await this.desiredState();
    settings = await this.withRuntimeTls(settings);
    const served = opts.everyTenant === true ? state.tenants : tenantsOn(state, settings.name);
    const renderer = this.renderers[settings.kind];
    const known = await this.renderStates.summaries(settings.kind);
    const current = served.map((t) => ({ state: t, hash: this.memo.hash(t) }));
    const plan = await this.planServedStates(renderer, settings, state.revision, current, known);
    const holding = opts.holds === undefined ? null : this.holdAtRunningState(settings.name, plan.served, opts.holds);
    const servedStates = holding?.served ?? plan.served;
    const snapshot: NodeSnapshot = {
      revision: state.revision,
      node: settings,
      tenants: servedStates.map((t) => this.tenantSnapshot(t, settings)),
    };
    const runtime = settings.kind === 'haproxy' && settings.runtimeAddress !== null;
    const generation = opts.reloadGeneration ?? 0;
    // Holding a tenant at another state than the validated one renders the node anew (from the renderers' fragment caches).
    let proxySegments = (holding?.changed !== true && plan.segments) || renderer.renderSegments(snapshot);
    if (runtime && generation > 0) proxySegments = withReloadGeneration(proxySegments, generation);
    const keepalived = opts.node === undefined ? null : await this.keepalived.render(opts.node);
    const segments = keepalived === null ? proxySegments : { ...proxySegments, [KEEPALIVED_FILES.config]: [keepalived] };
    const contentHash = this.store.contentHash(segments);
    // Without a Runtime API every change to the proxy's files is a reload: the structure is their
    // content, and parts would only say what changed, not why it needs one.
    const { structuralHash, structuralParts } = runtime
      ? structureHashes(snapshot, generation)
      : { structuralHash: keepalived === null ? contentHash : this.store.contentHash(proxySegments), structuralParts: () => ({}) };
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

  private async buildNow(nodeName: string): Promise<ServedConfig> {
    const started = Date.now();
    const node = await this.requireNode(nodeName);
    const holds: NodeHolds = { holds: await reloadHolds.holdsOn(this.db, nodeName), appliedHash: node.status.appliedHash, appliedRevision: node.appliedRevision, now: Date.now() };
    const rendered = await this.renderPlanned(nodeSettings(node), undefined, { reloadGeneration: node.reloadRequest.generation, node, holds });
    const { revision, plan, contentHash, structuralHash, structuralParts, snapshot, heldTenants, holding } = rendered;
    // The header only: the store remembers the digests of the version it stored last (or reads them).
    const latest = await configs.latestConfigVersion(this.db, nodeName, { files: false });
    await this.db.transaction().execute(async (trx) => {
      await configs.recordGood(trx, node.kind, plan.good.map((t) => ({ tenantId: t.state.tenant.id, state: t.state, hash: t.hash })), revision);
      await configs.recordErrors(trx, node.kind, plan.held, revision);
      for (const l of holding?.learned ?? []) await reloadHolds.recordHeldState(trx, nodeName, l.tenant, l.state);
      if (latest && latest.contentHash === contentHash && latest.structuralHash === structuralHash && canonicalJson(latest.heldTenants) === canonicalJson(heldTenants)) {
        // Same bytes: the stored version now also stands for this revision (no new version, no agent wake-up).
        if (latest.revision < revision) await configs.advanceConfigVersion(trx, latest.id, revision);
      } else {
        // Parts say what a reload is for; a version with the structure of the one before needs no
        // reload and stores none (`runningStructure` finds them on an older version).
        const parts = latest?.structuralHash === structuralHash ? {} : structuralParts();
        await this.store.insert(trx, { nodeName, revision, contentHash, structuralHash, structuralParts: parts, files: rendered.segments, heldTenants, previous: latest });
        await configs.pruneConfigVersions(trx, nodeName, VERSIONS_KEPT);
      }
    });
    this.rememberServed(nodeName, contentHash, rendered.servedStates, node.status.appliedHash);
    this.reloadHeld.set(nodeName, holding?.states ?? new Map());
    for (const wake of [...(this.storedListeners.get(nodeName) ?? [])]) wake();
    // Committed: runtime passes compare with these states from memory instead of reading them back.
    for (const t of plan.good) this.validated.remember(node.kind, t.state.tenant.id, t.hash, t.state);
    await this.renderStates.recorded(
      node.kind,
      plan.good.map((t) => ({ tenant: t.state.tenant.id, hash: t.hash, revision })),
      plan.held.map((h) => ({ tenant: h.tenant, error: h.error })),
    );
    this.metrics?.renderDuration.observe({ kind: node.kind }, (Date.now() - started) / 1000);
    this.metrics?.heldTenants.set({ node: nodeName }, heldTenants.length);
    this.logger.info(
      { node: nodeName, revision, tenants: plan.served.length, held: heldTenants.length, ms: Date.now() - started },
      'built node config',
    );
    const createdAt = new Date().toISOString();
    const config: NodeConfig = {
      node: nodeName, kind: node.kind, revision, contentHash, structuralHash, heldTenants, createdAt,
      // Joined only for a caller that reads them (an agent's fetch); the reconciler needs the snapshot alone.
      get files() {
        return rendered.files;
      },
    };
    return { config, snapshot, retryHeldAt: holding?.retryAt ?? null };
  }

  /**
   * Serves each tenant held on the node for a listener it could not bind at the state the node
   * runs: the one recorded when the hold began, else its state in the version the node last
   * applied (remembered from the builds that stored it; null when it was not there), else, when
   * that version was built by another replica or before a restart, its current state without
   * the VIPs whose listeners failed. A hold whose retry time has come is not applied: the build
   * tries the tenant's current state again, and the agent's next report ends or renews the hold.
   */
  private holdAtRunningState(nodeName: string, served: readonly TenantState[], h: NodeHolds): HoldOutcome | null {
    const active = new Map(h.holds.filter((x) => x.retryAt > h.now).map((x) => [x.tenant, x]));
    if (active.size === 0) return null;
    const ran = h.appliedHash === null ? undefined : this.servedHistory.get(nodeName)?.find((e) => e.hash === h.appliedHash);
    const out: TenantState[] = [];
    const held: HeldTenant[] = [];
    const learned: { tenant: string; state: TenantState | null }[] = [];
    const states = new Map<string, TenantState | null>();
    for (const t of served) {
      const hold = active.get(t.tenant.id);
      // A hold whose listeners the tenant no longer asks for (the VIP deleted, its port moved) has no cause left.
      if (hold === undefined || !stillWanted(t, hold)) {
        out.push(t);
        continue;
      }
      let good: TenantState | null;
      if (hold.good.known) good = hold.good.state as TenantState | null;
      else if (ran !== undefined) {
        good = ran.states.find((r) => r.tenant.id === t.tenant.id) ?? null;
        learned.push({ tenant: t.tenant.id, state: good });
      } else good = withoutVips(t, new Set(hold.listeners.map((l) => l.vip)));
      if (good !== null) out.push(good);
      states.set(t.tenant.id, good);
      held.push({ tenant: t.tenant.id, error: hold.reason, servingRevision: good === null ? null : h.appliedRevision, cause: 'reload' });
    }
    if (held.length > 0) this.logger.warn({ node: nodeName, tenants: held.map((x) => x.tenant) }, 'tenants held on the node: their new listeners could not be bound there');
    if (held.length === 0) return null;
    return { served: out, held, learned, states, changed: true, retryAt: Math.min(...[...active.values()].map((x) => x.retryAt)) };
  }

  /** Keeps the served states of a node's newest stored versions, and of the one it runs, by content hash. */
  private rememberServed(nodeName: string, hash: string, states: readonly TenantState[], appliedHash: string | null): void {
    const history = (this.servedHistory.get(nodeName) ?? []).filter((e) => e.hash !== hash);
    history.push({ hash, states });
    // Only references to states the memo holds anyway: a few versions cost a few arrays of pointers.
    while (history.length > SERVED_VERSIONS_KEPT) {
      const drop = history.findIndex((e) => e.hash !== appliedHash);
      history.splice(drop < 0 ? 0 : drop, 1);
    }
    this.servedHistory.set(nodeName, history);
  }

  /**
   * Decides which state of each tenant to serve. The fast path validates only the tenants whose
   * state changed since it last validated for this kind (none: no binary runs at all), with the
   * node's global sections; the whole node is rendered too, which catches what involves two
   * tenants (a shared listener) at the cost of the changed tenants' fragments. The whole file is
   * validated only when the node's settings changed (or once after a start). When the check
   * fails, each changed tenant is validated alone to find the culprits, which are held at their
   * last good state; if the mix still fails (an interaction), every changed tenant is held.
   */
  private async planServedStates(
    renderer: KindRenderer,
    settings: NodeSettings,
    revision: number,
    current: { state: TenantState; hash: string }[],
    known: ReadonlyMap<string, configs.RenderStateSummary>,
  ): Promise<{ served: TenantState[]; good: { state: TenantState; hash: string }[]; held: HeldTenant[]; segments?: SegmentedFiles | undefined }> {
    const snapshotOf = (states: TenantState[]): NodeSnapshot => ({ revision, node: settings, tenants: states.map((s) => this.tenantSnapshot(s, settings)) });
    const check = (states: TenantState[]) => this.judge(renderer, snapshotOf(states));
    const changed = current.filter((c) => known.get(c.state.tenant.id)?.goodHash !== c.hash);
    const settingsKey = canonicalJson(settings);
    const whole = this.validatedSettings.get(settings.name) !== settingsKey;
    const everyone = current.map((c) => c.state);
    // The whole node rendered once: it catches what involves two tenants (a shared listener), and
    // when nobody is held it is the build's output.
    const rendered = segmentsOrRefusal(renderer, snapshotOf(everyone));
    const toCheck = whole ? current : await this.needingTheBinary(settings.kind, changed, known);
    const first = !rendered.ok ? rendered : toCheck.length === 0 ? rendered : await check(toCheck.map((c) => c.state));
    if (first.ok) {
      if (whole) this.validatedSettings.set(settings.name, settingsKey);
      return { served: everyone, good: changed, held: [], segments: rendered.ok ? rendered.segments : undefined };
    }

    const suspects = changed.length > 0 ? changed : current;
    const culprits = new Map<string, string>();
    for (const s of suspects) {
      const alone = await check([s.state]);
      if (!alone.ok) culprits.set(s.state.tenant.id, alone.message);
    }
    if (culprits.size === 0) for (const s of suspects) culprits.set(s.state.tenant.id, first.message);

    const mix = async (blame: Map<string, string>) => {
      const goods = await this.goodStatesOf(settings.kind, [...blame.keys()], known);
      const served: TenantState[] = [];
      const held: HeldTenant[] = [];
      for (const c of current) {
        const id = c.state.tenant.id;
        const error = blame.get(id);
        if (error === undefined) {
          served.push(c.state);
          continue;
        }
        const good = goods.get(id);
        if (good !== undefined) served.push(good);
        held.push({ tenant: id, error: truncate(error), servingRevision: good === undefined ? null : (known.get(id)?.goodRevision ?? null) });
      }
      return { served, held };
    };
    let result = await mix(culprits);
    const verdict = await check(result.served);
    if (!verdict.ok) {
      for (const s of suspects) if (!culprits.has(s.state.tenant.id)) culprits.set(s.state.tenant.id, verdict.message);
      result = await mix(culprits);
      const last = await check(result.served);
      if (!last.ok) throw new UpstreamError(`even the last good configuration does not validate: ${truncate(last.message)}`);
    }
    this.validatedSettings.set(settings.name, settingsKey);
    for (const h of result.held) this.logger.warn({ tenant: h.tenant, error: h.error }, 'tenant held at its last good state');
    return { ...result, good: changed.filter((c) => !culprits.has(c.state.tenant.id)) };
  }

  /**
   * The changed tenants the binary must see. On HAProxy, a tenant whose structure equals its last
   * validated state's changed only in what the Runtime API sets live (weights, member states and
   * addresses, caps: values the API schemas and the render guard check): the reconciler has pushed
   * it to the proxies without a check, and `haproxy -c` would prove nothing more. Anything
   * structural, and every NGINX change, goes through the binary.
   */
  private async needingTheBinary(kind: NodeKind, changed: { state: TenantState; hash: string }[], known: ReadonlyMap<string, configs.RenderStateSummary>) {
    if (kind !== 'haproxy' || changed.length === 0) return changed;
    const goods = await this.goodStatesOf(kind, changed.map((c) => c.state.tenant.id), known);
    return changed.filter((c) => {
      const good = goods.get(c.state.tenant.id);
      return good === undefined || this.memo.structure(good) !== this.memo.structure(c.state);
    });
  }

  /** The last validated states of these tenants for a kind (from memory when seen before), for holding them there. */
  private async goodStatesOf(kind: NodeKind, tenants: readonly string[], known: ReadonlyMap<string, configs.RenderStateSummary>): Promise<Map<string, TenantState>> {
    const out = new Map<string, TenantState>();
    const missing: string[] = [];
    for (const tenant of tenants) {
      const hash = known.get(tenant)?.goodHash ?? null;
      if (hash === null) continue;
      const good = this.validated.get(kind, tenant, hash);
      if (good === undefined) missing.push(tenant);
      else out.set(tenant, good);
    }
    for (const [tenant, { hash, state }] of await configs.goodStates(this.db, kind, missing)) {
      this.validated.remember(kind, tenant, hash, state as TenantState);
      out.set(tenant, state as TenantState);
    }
    return out;
  }

  /** Render and validate; a render-time refusal counts as a failed validation with its message. */
  private async judge(renderer: KindRenderer, snapshot: NodeSnapshot): Promise<Verdict> {
    try {
      renderer.render(snapshot);
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
    return renderer.validate(snapshot);
  }

  private tenantSnapshot(t: TenantState, node: NodeSettings): TenantSnapshot {
    // The same state on the same node is the same snapshot: one lookup, without working out its caps.
    const settingsKey = `${node.kind}\0${node.capacity.vcpu}\0${node.capacity.memoryMb}`;
    let perNode = this.nodeSnapshots.get(node.name);
    if (perNode?.settingsKey !== settingsKey) this.nodeSnapshots.set(node.name, (perNode = { settingsKey, byState: new WeakMap() }));
    const known = perNode.byState.get(t);
    if (known !== undefined) return known;
    const snapshot = this.sharedTenantSnapshot(t, node);
    perNode.byState.set(t, snapshot);
    return snapshot;
  }

  private sharedTenantSnapshot(t: TenantState, node: NodeSettings): TenantSnapshot {
    const byKind = this.snapshots.get(t) ?? new Map<string, TenantSnapshot>();
    this.snapshots.set(t, byKind);
    // Nodes of a kind whose caps agree share one snapshot (and so the renderers' fragment caches).
    const allocation = this.allocationOf(t, node);
    const key = `${node.kind}:${allocation.maxConnections}:${allocation.requestsPerSecond}:${allocation.connectionLimit}`;
    const cached = byKind.get(key);
    if (cached) return cached;
    const snapshot = this.buildTenantSnapshot(t, node, allocation);
    byKind.set(key, snapshot);
    return snapshot;
  }

  /** The tenant's stored caps on this node (the rebalancer's), else what it reserved. */
  private allocationOf(t: TenantState, node: NodeSettings): TenantSnapshot['allocation'] {
    const factors = this.capacity[node.kind];
    const stored = t.allocations?.find((a) => a.node === node.name);
    const converted = toResourceVector(t.tenant.reservation, factors);
    const maxConnections = Math.max(1, stored?.maxConnections ?? converted.connections);
    const requestsPerSecond = Math.max(1, stored?.requestsPerSecond ?? converted.requestsPerSecond);
    // The rebalancer's ceiling (capacity less the others' reservations); before its first pass, the limit.
    const ceiling = stored?.ceiling ?? toResourceVector(t.tenant.limit, factors).connections;
    return { maxConnections, requestsPerSecond, connectionLimit: Math.max(maxConnections, ceiling) };
  }

  private buildTenantSnapshot(t: TenantState, node: NodeSettings, allocation: TenantSnapshot['allocation']): TenantSnapshot {
    return {
      id: t.tenant.id,
      vips: t.vips,
      pools: t.pools,
      certificates: t.certificates.map((c: SealedCertificate) => ({
        name: c.name,
        chainPem: c.chainPem,
        keyPem: this.box.open(c.keyCiphertext, `certificate:${t.tenant.id}/${c.name}`),
        sans: c.sans,
      })),
      caBundles: t.caBundles ?? [],
      allocation,
    };
  }

  private async open(v: configs.StoredConfigVersion, node: ProxyNode): Promise<NodeConfig> {
    if (v.manifest === null && v.filesSealed === null && !this.store.holds(v.id)) {
      // A header (latestConfigVersion without files) of a version not opened here yet: read it whole.
      v = (await configs.configVersionById(this.db, v.id)) ?? v;
    }
    return {
      node: v.nodeName,
      kind: node.kind,
      revision: v.revision,
      contentHash: v.contentHash,
      structuralHash: v.structuralHash,
      files: await this.store.open(v),
      heldTenants: v.heldTenants,
      createdAt: v.createdAt,
    };
  }


  /**
   * The desired state at the current revision, loaded once however many nodes ask for it at the
   * same time (a change wakes every node at once).
   */
  private desiredState(atLeast?: number): Promise<DesiredState> {
    return this.states.get(() => this.currentRevision(), atLeast);
  }


  /**
   * The settings with the node's Runtime API certificate, when it has a listener for one (a
   * HAProxy node with a Runtime API or master CLI address). Settings that already say (a
   * render for no node) are kept as they are.
   */
  private async withRuntimeTls(settings: NodeSettings): Promise<NodeSettings> {
    if (settings.runtimeTls !== undefined) return settings;
    const listens = settings.kind === 'haproxy' && (settings.runtimeAddress !== null || (settings.masterAddress ?? null) !== null);
    const runtimeTls = listens && this.runtimeTls !== undefined ? await this.runtimeTls.nodeMaterial(settings.name) : null;
    return { ...settings, runtimeTls };
  }

  private async requireNode(name: string): Promise<ProxyNode> {
    const node = await findNode(this.db, name);
    if (!node) throw new NotFoundError('node', name);
    return node;
  }

  private async currentRevision(): Promise<number> {
    const row = await this.db.selectFrom('revision_counter').select('revision').where('id', '=', 1).executeTakeFirstOrThrow();
    return Number(row.revision);
  }
}

/**
 * The files with the node's reload generation in a comment at the top of the main config: the
 * agent fetches a version whose bytes changed and reloads when its structural hash did, so a
 * requested reload needs both to move (the raised cap itself is already in the files).
 */
function withReloadGeneration(files: SegmentedFiles, generation: number): SegmentedFiles {
  const parts = files['haproxy.cfg'];
  if (parts === undefined) return files;
  return { ...files, 'haproxy.cfg': [`# reload generation ${generation}: requested for a change the Runtime API cannot make safely\n`, ...parts] };
}

export function nodeSettings(node: ProxyNode): NodeSettings {
  return {
    name: node.name,
    kind: node.kind,
    runtimeAddress: node.runtimeAddress,
    masterAddress: node.masterAddress,
    socketDir: node.socketDir,
    capacity: node.capacity,
    configDir: node.configDir,
  };
}

const KEY_BLOCK_RE = /-----BEGIN ((?:[A-Z]+ )?PRIVATE KEY)-----[\s\S]*?-----END \1-----\n?/g;

/** Previews show everything but private keys. */
export function withholdKeys(files: RenderedFiles): RenderedFiles {
  return Object.fromEntries(Object.entries(files).map(([name, content]) => [name, content.replace(KEY_BLOCK_RE, '# private key withheld\n')]));
}

/** The snapshot's files, or why the renderer refuses it (a shared listener, a dangling name). */
function segmentsOrRefusal(renderer: KindRenderer, snapshot: NodeSnapshot): { ok: true; segments: SegmentedFiles } | { ok: false; message: string } {
  try {
    return { ok: true, segments: renderer.renderSegments(snapshot) };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

function truncate(message: string, max = 4000): string {
  return message.length > max ? `${message.slice(0, max)}…` : message;
}
