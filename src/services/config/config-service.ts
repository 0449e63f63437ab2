import { NotFoundError } from '../../domain/errors.js';
import { DEFAULT_CAPACITY_MODEL, type CapacityModel } from '../../domain/capacity.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import type { NodeKind, ProxyNode } from '../../domain/node.js';
import type { NodeSettings, NodeSnapshot, RenderedFiles } from '../../domain/snapshot.js';
import type { Db } from '../../db/connect.js';
import * as configs from '../../db/config-repository.js';
import type { HeldTenant } from '../../db/config-repository.js';
import { findNode } from '../../db/node-repository.js';
import * as reloadHolds from '../../db/reload-hold-repository.js';
import { currentRevision } from '../../db/revision-repository.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import { KeepalivedService } from '../keepalived-service.js';
import { SecretBox } from '../secret-box.js';
import { Semaphore } from '../../util/semaphore.js';
import { BuildCoalescer } from './build-coalescer.js';
import { ConfigStore } from './config-store.js';
import type { NodeHolds } from './hold-at-running-state.js';
import type { KindRenderer, Verdict } from './kind-renderer.js';
import { LongPollWakeups, type ChangeSource } from './long-poll-wakeups.js';
import type { NodeConfig, ServedConfig } from './node-config.js';
import { NodeConfigPlanner, type PlannedConfig, type RuntimeTlsSource } from './node-config-planner.js';
import { nodeSettingsOf } from './node-settings.js';

const VERSIONS_KEPT = 20;

/**
 * Turns the desired state into each node's files, proven by the real binary before they are
 * stored. One tenant's part that the proxy refuses holds only that tenant at its last good state
 * (or leaves it out when it never had one) and is flagged; everyone else's changes go out.
 * This class builds, stores and serves (long polls included); what a node would be served is
 * worked out by its NodeConfigPlanner.
 */
export class ConfigService {
  /** Stored versions, segment by segment: a one-tenant change stores and hashes one tenant's part. */
  private readonly store: ConfigStore;
  /** What each node would be served: rendered with per-tenant holding, stored nowhere. */
  private readonly planner: NodeConfigPlanner;
  /** One build per node at a time; writes during a build share the one after it. */
  private readonly builds: BuildCoalescer<ServedConfig>;
  /** Long polls waiting for a node's next stored build. */
  private readonly wakeups: LongPollWakeups;
  /**
   * Builds take turns: one at a time renders, hashes and stores, and a build waiting for its
   * validator (a child process) lets the next one go meanwhile. Interleaved on the one thread,
   * three nodes' builds each took as long as all three (a change's builds at 10,000 tenants:
   * about 75 ms each together, 15–25 ms each in turn, the same time for all of them).
   */
  private readonly turn = new Semaphore(1);

  constructor(
    private readonly db: Db,
    secretKey: Buffer,
    renderers: Readonly<Record<NodeKind, KindRenderer>>,
    private readonly logger: Logger,
    changes: ChangeSource,
    private readonly metrics?: Metrics,
    capacity: CapacityModel = DEFAULT_CAPACITY_MODEL,
    /** Each HAProxy node's Runtime API certificate (FleetPki); absent: nodes get no mTLS listener. */
    runtimeTls?: RuntimeTlsSource,
  ) {
    const box = new SecretBox(secretKey);
    const keepalived = new KeepalivedService(db, box, logger);
    // The newest version of each node is what agents fetch: a few joined versions in memory (10 MB each at 10,000 tenants).
    this.store = new ConfigStore(db, secretKey, { logger, maxCachedVersions: 4 });
    const currentRevision = () => this.currentRevision();
    this.planner = new NodeConfigPlanner({
      db,
      box,
      store: this.store,
      keepalived,
      renderers,
      logger,
      capacity,
      runtimeTls,
      currentRevision,
    });
    this.builds = new BuildCoalescer((node) => this.turn.run(() => this.buildNow(node)));
    this.wakeups = new LongPollWakeups(changes);
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
  async waitForChange(
    nodeName: string,
    knownHash: string,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<NodeConfig | null> {
    const deadline = Date.now() + waitMs;
    const node = await this.requireNode(nodeName);
    for (;;) {
      const latest = await configs.latestConfigVersion(this.db, nodeName, { files: false });
      if (latest && latest.contentHash !== knownHash) return this.open(latest, node);
      if (Date.now() >= deadline || signal?.aborted === true || this.wakeups.closed) return null;
      if (!latest || latest.revision < (await this.currentRevision())) this.ensureBuilding(nodeName);
      await this.wakeups.next(nodeName, deadline, signal);
    }
  }

  /** Starts a build of the node unless one is running here; a failure is logged (the poll goes on with what is stored). */
  private ensureBuilding(nodeName: string): void {
    if (this.builds.isBuilding(nodeName)) return;
    this.buildServed(nodeName).catch((err: unknown) =>
      this.logger.warn({ node: nodeName, err }, 'config build for a long poll failed'),
    );
  }

  /** Deletes stored config segments that no kept version references; answers how many (the retention job runs it). */
  sweepSegments(): Promise<number> {
    return this.store.sweep();
  }

  /**
   * The structure a node runs that applied these contents (its newest stored version with them):
   * hash and labelled parts, which say what a reload is for. Undefined when no such version is stored.
   */
  async runningStructure(
    nodeName: string,
    contentHash: string,
  ): Promise<{ structuralHash: string; structuralParts: Record<string, string> } | undefined> {
    const found = await configs.structureOfVersion(this.db, nodeName, contentHash);
    if (found === undefined) return undefined;
    const structuralParts =
      found.structureChunks === null ? found.structuralParts : await this.store.openStructure(found.structureChunks);
    return { structuralHash: found.structuralHash, structuralParts };
  }

  /** Ends every long poll now (they answer with what they have); called when the process stops. */
  close(): void {
    this.wakeups.close();
  }

  /** Builds, validates and stores the node's config now. Concurrent calls for one node share one build. */
  async build(nodeName: string): Promise<NodeConfig> {
    return (await this.buildServed(nodeName)).config;
  }

  /** `build`, also answering the snapshot the files were rendered from (what runtime planning compares with). */
  buildServed(nodeName: string): Promise<ServedConfig> {
    return this.builds.run(nodeName);
  }

  /**
   * A tenant's part alone, as a node of `kind` would get it, validated by the real binary.
   * Private keys are withheld from the answer (the validation used them).
   */
  preview(tenantId: string, kind: NodeKind): Promise<{ files: RenderedFiles; validation: Verdict; revision: number }> {
    return this.planner.preview(tenantId, kind);
  }

  /** What a node with these settings would run if it served every active tenant, stored nowhere (NodeConfigPlanner.renderFor). */
  renderFor(settings: NodeSettings): Promise<{ files: RenderedFiles; revision: number; heldTenants: HeldTenant[] }> {
    return this.planner.renderFor(settings);
  }

  /** What a HAProxy node's Runtime API should hold now, without waiting for the validator (NodeConfigPlanner.runtimeSnapshot). */
  runtimeSnapshot(settings: NodeSettings, atLeast?: number): Promise<NodeSnapshot> {
    return this.planner.runtimeSnapshot(settings, atLeast);
  }

  /** What a node with these settings would be served, with per-tenant holding, stored nowhere (NodeConfigPlanner.renderPlanned). */
  renderPlanned(...args: Parameters<NodeConfigPlanner['renderPlanned']>): Promise<PlannedConfig> {
    return this.planner.renderPlanned(...args);
  }

  private async buildNow(nodeName: string): Promise<ServedConfig> {
    const started = Date.now();
    // Three reads side by side. The latest version is read before rendering: this node's builds
    // take turns (BuildCoalescer), so none stores in between here.
    const [node, nodeHolds, latest] = await Promise.all([
      this.requireNode(nodeName),
      reloadHolds.holdsOn(this.db, nodeName),
      configs.latestConfigVersion(this.db, nodeName, { files: false }),
    ]);
    const holds: NodeHolds = {
      holds: nodeHolds,
      appliedHash: node.status.appliedHash,
      appliedRevision: node.appliedRevision,
      now: Date.now(),
    };
    const rendered = await this.planner.renderPlanned(nodeSettingsOf(node), undefined, {
      reloadGeneration: node.reloadRequest.generation,
      node,
      holds,
      validating: (run) => this.turn.without(run),
    });
    const { revision, plan, contentHash, structuralHash, structuralParts, snapshot, heldTenants, holding } = rendered;
    await this.db.transaction().execute(async (trx) => {
      await configs.recordGood(
        trx,
        node.kind,
        plan.good.map((t) => ({ tenantId: t.state.tenant.id, state: t.state, hash: t.hash })),
        revision,
      );
      await configs.recordErrors(trx, node.kind, plan.held, revision);
      for (const l of holding?.learned ?? []) await reloadHolds.recordHeldState(trx, nodeName, l.tenant, l.state);
      if (
        latest &&
        latest.contentHash === contentHash &&
        latest.structuralHash === structuralHash &&
        canonicalJson(latest.heldTenants) === canonicalJson(heldTenants)
      ) {
        // Same bytes: the stored version now also stands for this revision (no new version, no agent wake-up).
        if (latest.revision < revision) await configs.advanceConfigVersion(trx, latest.id, revision);
      } else {
        // Parts say what a reload is for; a version with the structure of the one before needs no
        // reload and stores none (`runningStructure` finds them on an older version).
        const parts = latest?.structuralHash === structuralHash ? {} : structuralParts();
        await this.store.insert(trx, {
          nodeName,
          revision,
          contentHash,
          structuralHash,
          structuralParts: parts,
          files: rendered.segments,
          heldTenants,
          previous: latest,
        });
        await configs.pruneConfigVersions(trx, nodeName, VERSIONS_KEPT);
      }
    });
    this.wakeups.buildStored(nodeName);
    await this.planner.recordBuilt(nodeName, node.kind, rendered, node.status.appliedHash);
    this.metrics?.renderDuration.observe({ kind: node.kind }, (Date.now() - started) / 1000);
    this.metrics?.heldTenants.set({ node: nodeName }, heldTenants.length);
    this.logger.info(
      { node: nodeName, revision, tenants: plan.served.length, held: heldTenants.length, ms: Date.now() - started },
      'built node config',
    );
    const createdAt = new Date().toISOString();
    const config: NodeConfig = {
      node: nodeName,
      kind: node.kind,
      revision,
      contentHash,
      structuralHash,
      heldTenants,
      createdAt,
      // Joined only for a caller that reads them (an agent's fetch); the reconciler needs the snapshot alone.
      get files() {
        return rendered.files;
      },
    };
    return { config, snapshot, retryHeldAt: holding?.retryAt ?? null };
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

  private async requireNode(name: string): Promise<ProxyNode> {
    const node = await findNode(this.db, name);
    if (!node) throw new NotFoundError('node', name);
    return node;
  }

  private currentRevision(): Promise<number> {
    return currentRevision(this.db);
  }
}
