import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import axios from 'axios';
import { HAPROXY_FILES, KEEPALIVED_FILES, NGINX_FILES } from '../../domain/config-files.js';
import {
  describeBindFailure,
  listenersIn,
  newListeners,
  type FailedListener,
  type Listener,
} from '../config-listeners.js';
import { probeListeners } from './listener-probe.js';
import type { NodeKind } from '../../domain/node.js';
import type { Logger } from '../../logger.js';
import type { AgentStore, Release, ReleaseManifest } from './agent-store.js';
import { ConfigDirLockedError } from './config-dir-lock.js';
import { decideApply } from './apply-decision.js';
import { jitteredDelay, type BackoffPolicy } from '../../util/backoff.js';
import { ControlPlaneError, type AgentReport, type ControlPlaneApi } from './control-plane-client.js';
import { deliveryProblem, type DeliveredConfig } from './delivered-config.js';
import type { ProxyReloader } from './reload/proxy-reloader.js';
import type { ProxyValidator } from './proxy-validator.js';
import type { Result } from '../../util/result.js';
import type { KeepalivedControl } from './keepalived-control.js';

export interface AgentOptions {
  readonly node: string;
  readonly kind: NodeKind;
  readonly configDir: string;
  /** Long-poll wait in seconds (the control plane allows up to 120). */
  readonly waitSeconds: number;
  readonly heartbeatSeconds: number;
  /** Good releases kept on disk besides the active one and the last known good one. */
  readonly keepReleases?: number;
  readonly keepFailed?: number;
  /** Backoff while the control plane is unreachable or failing (5xx). */
  readonly retry?: BackoffPolicy;
  /** Delay between attempts when only an operator can help (401, 403, 404). */
  readonly slowRetryMs?: number;
  /** A config that failed is tried again after this long, or at once when the control plane sends another. */
  readonly retryRejectedMs?: number;
}

export interface AgentDeps {
  readonly client: ControlPlaneApi;
  readonly store: AgentStore;
  readonly validator: ProxyValidator;
  readonly reloader: ProxyReloader;
  /** Validates and reloads keepalived for nodes with VRRP settings; absent: such configs are refused. */
  readonly keepalived?: KeepalivedControl;
  readonly logger: Logger;
  readonly agentVersion: string;
  readonly proxyVersion: () => Promise<string | null>;
  readonly random?: () => number;
  /** Which of these listeners cannot be bound on the node now (default: a real bind of each). */
  readonly probe?: (listeners: readonly Listener[]) => Promise<FailedListener[]>;
}

export type ApplyOutcome =
  | { readonly status: 'unchanged' }
  | { readonly status: 'applied'; readonly release: string; readonly reloaded: boolean }
  /** Refused before the swap (by the validator, or as meant for another node): nothing changed. */
  | { readonly status: 'rejected'; readonly release: string | null; readonly message: string }
  /**
   * Swapped in, but the proxy refused to reload: the previous release was restored. A refusal
   * caused by new listeners that cannot be bound names them, so the control plane can hold their
   * tenants on this node and let the others' changes through.
   */
  | {
      readonly status: 'failed';
      readonly release: string | null;
      readonly message: string;
      readonly failedListeners?: readonly FailedListener[];
    };

/** How `--once` ended, for the exit code. */
export type OnceResult = ApplyOutcome | { readonly status: 'unreachable' | 'refused'; readonly message: string };

const DEFAULT_RETRY: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000, factor: 2 };

/**
 * `switchyard agent`: keeps a node's proxy running the files the control plane renders for it.
 * Long-polls its config, stages each new version as a release, proves it with the real binary,
 * swaps it in atomically, reloads only for structural changes, verifies the reload, restores
 * the last known good release when the proxy refuses, and reports every outcome. When the
 * control plane is away nothing on the node changes: the proxy keeps serving what it has.
 */
export class Agent {
  private readonly log: Logger;
  private readonly retry: BackoffPolicy;
  private readonly abort = new AbortController();
  private stopped = false;
  private loop: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  /** An outcome report the control plane has not received yet; sent before anything else. */
  private unsent: AgentReport | null = null;
  private rejected: { contentHash: string; at: number } | null = null;
  /** Whether the control plane has been told what runs since this agent started. */
  private announced = false;
  private failures = 0;
  private versionCache: Promise<string | null> | null = null;

  constructor(
    private readonly options: AgentOptions,
    private readonly deps: AgentDeps,
  ) {
    this.log = deps.logger;
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  /** Runs until `stop()`; never rejects for anything the control plane or the proxy does. */
  run(): Promise<void> {
    this.loop ??= this.pollLoop();
    this.scheduleHeartbeat(0);
    return this.loop;
  }

  /** Stops polling and heartbeats; an apply in progress finishes first (a swap is never left half done). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.heartbeat !== null) clearTimeout(this.heartbeat);
    await this.loop?.catch(() => undefined);
  }

  /** `--once`: applies the node's current config and reports it. */
  async once(): Promise<OnceResult> {
    try {
      await this.deps.store.init();
    } catch (error) {
      this.logInitFailure(error);
      return { status: 'refused', message: (error as Error).message };
    }
    try {
      return await this.applyCurrent();
    } finally {
      await this.deps.store.close();
    }
  }

  private async applyCurrent(): Promise<OnceResult> {
    let config: DeliveredConfig;
    try {
      const answer = await this.deps.client.fetchConfig({ etag: null, waitSeconds: 0, signal: this.abort.signal });
      if (!answer.changed)
        throw new ControlPlaneError('invalid', 'the control plane answered 304 without If-None-Match');
      config = answer.config;
    } catch (error) {
      const failure = error instanceof ControlPlaneError ? error.failure : 'unreachable';
      this.logFailure(error, 0);
      return {
        status: failure === 'unreachable' || failure === 'server' ? 'unreachable' : 'refused',
        message: (error as Error).message,
      };
    }
    const outcome = await this.apply(config);
    await this.deps.client
      .report(await this.reportFor(outcome, config), this.abort.signal)
      .catch((error: unknown) =>
        this.log.warn(
          { error: (error as Error).message },
          'could not report the outcome; the running agent reports what runs when it starts',
        ),
      );
    return outcome;
  }

  /**
   * Stages, validates, swaps and (for structural changes) reloads one config. Never throws: an
   * unexpected error (a full disk, a permission) restores the previous release and is a failure.
   */
  async apply(config: DeliveredConfig, fetchedInMs?: number): Promise<ApplyOutcome> {
    const { store, validator, reloader } = this.deps;
    const current = await store.current();
    if (current?.manifest?.contentHash === config.contentHash) return { status: 'unchanged' };
    const problem = deliveryProblem(config, this.options);
    if (problem !== null) {
      this.log.error(
        { revision: config.revision, error: problem },
        'refused a config not meant for this agent; nothing changed on the node',
      );
      return { status: 'rejected', release: null, message: problem };
    }
    const name = await store.newName(config.contentHash);
    const log = this.log.child({ revision: config.revision, contentHash: config.contentHash, release: name });
    // Where an apply's time goes (logged with its outcome): what an agent's lag is made of.
    const started = performance.now();
    const ms: { fetch?: number; stage?: number; validate?: number; reload?: number; total?: number } =
      fetchedInMs === undefined ? {} : { fetch: Math.round(fetchedInMs) };
    const lap = (step: keyof typeof ms, from: number) => {
      ms[step] = Math.round(performance.now() - from);
      return performance.now();
    };
    let swapped = false;
    let release: string | null = null;
    try {
      const staged = await store.stage(name, config.files, this.manifest(config));
      release = staged;
      const mark = lap('stage', started);
      const decision = decideApply(running(current), config, await reloader.running());
      // A running proxy that reloads parses the new files itself and, refusing them, keeps serving
      // with its old workers (HAProxy's master, NGINX's master); the agent then puts the previous
      // release back. A whole-file check before that would parse every file twice per apply, most
      // of an agent's lag under a stream of changes (docs/operating-nodes.md). Files that are not
      // reloaded now (no proxy yet, or a change that needs no reload) have no such fallback at the
      // next start or reload, so they are checked first.
      const checkFirst = decision.action !== 'reload';
      let verdict: Result = { ok: true, output: '' };
      if (checkFirst) {
        verdict = await validator.validate(config.files, store.configDir, store.scratchDir());
        lap('validate', mark);
      }
      if (!verdict.ok) {
        const kept = await store.keepFailed(staged, name);
        log.error(
          { kept, error: verdict.message },
          'the proxy rejected the new files; nothing changed on the node. Fix the cause and change the config (the rejected copy is kept for inspection)',
        );
        return { status: 'rejected', release: kept, message: verdict.message };
      }
      const vrrp = await this.checkKeepalived(config, staged);
      if (!vrrp.ok) {
        const kept = await store.keepFailed(staged, name);
        log.error(
          { kept, error: vrrp.message },
          "keepalived rejected the new keepalived.conf; nothing changed on the node. Check the node's vrrp settings (interface, address) against the host",
        );
        return { status: 'rejected', release: kept, message: vrrp.message };
      }
      await reloader.prepare({
        stagedDir: staged,
        activeDir: current?.dir ?? null,
        reload: decision.action === 'reload',
      });
      release = await store.commit(staged, name);
      // Until the proxy's verdict, a note says which release to put back should the agent die.
      if (decision.action === 'reload') await store.beginSwap(current, name);
      await store.activate(store.linkTo(name));
      swapped = true;
      if (decision.action === 'reload') {
        const reloading = performance.now();
        const reloaded = await reloader.reload(current?.dir ?? null);
        lap('reload', reloading);
        if (!reloaded.ok) {
          await store.activate(current?.link ?? null);
          swapped = false;
          await store.endSwap();
          const kept = await store.keepFailed(release, name);
          // The check skipped before the reload names the cause now, when it is in the files.
          if (!checkFirst) verdict = await validator.validate(config.files, store.configDir, store.scratchDir());
          if (!verdict.ok) {
            log.error(
              { kept, error: verdict.message },
              'the proxy refused to reload the new files, which do not pass its check; the previous release is active again and still serving. Fix the cause and change the config (the rejected copy is kept for inspection)',
            );
            return { status: 'rejected', release: kept, message: verdict.message };
          }
          const failedListeners = await this.unbindable(config, current);
          const blamed =
            failedListeners.length === 0
              ? ''
              : `\nListeners that cannot be bound: ${failedListeners.map(describeBindFailure).join('; ')}`;
          const message = `${reloaded.message}${blamed}${verdict.output ? `\nThe validator accepted the files with:\n${verdict.output}` : ''}`;
          log.error(
            { kept, error: message, failedListeners },
            'the proxy refused to reload; the previous release is active again and still serving',
          );
          return { status: 'failed', release: kept, message, ...(failedListeners.length > 0 && { failedListeners }) };
        }
        await store.endSwap();
        this.versionCache = null;
        lap('total', started);
        log.info({ reason: decision.reason, detail: reloaded.detail, ms }, 'applied and reloaded');
      } else {
        lap('total', started);
        log.info({ reason: decision.reason, ms }, 'applied without a reload');
      }
      if (vrrp.changed) await this.reloadKeepalived(log);
      await this.prune(name, current);
      return { status: 'applied', release: name, reloaded: decision.action === 'reload' };
    } catch (error) {
      const restored =
        !swapped ||
        (await store.activate(current?.link ?? null).then(
          () => true,
          (err: unknown) => {
            log.fatal({ err }, 'could not restore the previous release: check configDir by hand');
            return false;
          },
        ));
      // Unrestored, the note stays: the next start puts the previous release back.
      if (restored) await store.endSwap().catch(() => undefined);
      const kept = release === null ? null : await store.keepFailed(release, name).catch(() => release);
      log.error({ err: error, kept }, 'could not apply the new files; the previous release stays active');
      return {
        status: 'failed',
        release: kept,
        message: `the agent could not apply the config: ${(error as Error).message}`,
      };
    }
  }

  /**
   * Proves the staged keepalived.conf with `keepalived -t` (before anything is swapped in) and
   * says whether it differs from the running release's. A config without one changes nothing.
   */
  private async checkKeepalived(
    config: DeliveredConfig,
    staged: string,
  ): Promise<{ ok: true; changed: boolean } | { ok: false; message: string }> {
    const text = config.files[KEEPALIVED_FILES.config];
    if (text === undefined) return { ok: true, changed: false };
    const control = this.deps.keepalived;
    if (control === undefined)
      return {
        ok: false,
        message: 'the config has a keepalived.conf but this agent was started without keepalived support',
      };
    const verdict = await control.validate(join(staged, KEEPALIVED_FILES.config));
    // Named as the operator knows it: where keepalived reads it once swapped in.
    if (!verdict.ok) return { ok: false, message: verdict.message.replaceAll(staged, this.deps.store.configDir) };
    const running = await readFile(join(this.deps.store.configDir, KEEPALIVED_FILES.config), 'utf8').catch(() => null);
    return { ok: true, changed: running !== text };
  }

  /** keepalived reads the new file (the configDir symlink now points at it); one that does not run reads it when it starts. */
  private async reloadKeepalived(log: Logger): Promise<void> {
    const reload = await this.deps.keepalived!.reload();
    if (reload.status === 'reloaded')
      log.info({ pid: reload.pid }, 'keepalived reloaded (SIGHUP) with the new keepalived.conf');
    else
      log.warn(
        { pidFile: reload.pidFile },
        `keepalived is not running (no keepalived process in ${reload.pidFile}), so no VIP moves: start it with keepalived -f ${join(this.options.configDir, KEEPALIVED_FILES.config)} -p ${reload.pidFile}`,
      );
  }

  /**
   * After a refused reload: the listeners the new files add (the running proxy holds the others)
   * that cannot be bound here now, a port another process holds or an address the node lacks.
   * The proxy's own words rarely say which (HAProxy 2.6 tells only its log), so the agent tries.
   */
  private async unbindable(config: DeliveredConfig, running: Release | null): Promise<FailedListener[]> {
    const file = config.kind === 'haproxy' ? HAPROXY_FILES.config : NGINX_FILES.config;
    const old = running === null ? '' : await readFile(join(running.dir, file), 'utf8').catch(() => '');
    const fresh = newListeners(listenersIn(config.kind, config.files), listenersIn(config.kind, { [file]: old }));
    try {
      return await (this.deps.probe ?? probeListeners)(fresh);
    } catch (error) {
      this.log.warn({ err: error }, 'could not probe the new listeners; the failure is reported without them');
      return [];
    }
  }

  private async pollLoop(): Promise<void> {
    try {
      await this.deps.store.init();
    } catch (error) {
      this.logInitFailure(error);
      throw error;
    }
    try {
      while (!this.stopped) {
        try {
          await this.pollOnce();
        } catch (error) {
          if (this.stopped || axios.isCancel(error)) break;
          await this.sleep(this.onFailure(error));
        }
      }
    } finally {
      await this.deps.store.close();
    }
  }

  private logInitFailure(error: unknown): void {
    if (error instanceof ConfigDirLockedError) {
      this.log.fatal({ configDir: this.options.configDir, holder: error.holder }, error.message);
      return;
    }
    this.log.fatal(
      { err: error, configDir: this.options.configDir },
      'cannot prepare configDir and its releases directory: check that the agent may write to its parent',
    );
  }

  private async pollOnce(): Promise<void> {
    if (this.unsent !== null) await this.send(this.unsent);
    const current = await this.deps.store.current();
    const running = current?.manifest?.contentHash ?? null;
    const retryRejectedMs = this.options.retryRejectedMs ?? 300_000;
    const holdRejected = this.rejected !== null && Date.now() < this.rejected.at + retryRejectedMs;
    // Polling with the rejected hash waits for a different config instead of fetching it again at once.
    const etag = holdRejected ? this.rejected!.contentHash : running;
    // The first poll answers at once, so the control plane learns what runs here right after a restart.
    const wait = !this.announced
      ? 0
      : holdRejected
        ? Math.max(
            1,
            Math.min(this.options.waitSeconds, Math.ceil((this.rejected!.at + retryRejectedMs - Date.now()) / 1000)),
          )
        : this.options.waitSeconds;
    const asked = performance.now();
    const answer = await this.deps.client.fetchConfig({ etag, waitSeconds: wait, signal: this.abort.signal });
    this.reachable();
    if (!answer.changed) {
      if (!this.announced && etag === running && current?.manifest)
        await this.send(this.appliedReport(current.manifest, false));
      this.announced = true;
      return;
    }
    const config = answer.config;
    const outcome = await this.apply(config, performance.now() - asked);
    this.rejected =
      outcome.status === 'rejected' || outcome.status === 'failed'
        ? { contentHash: config.contentHash, at: Date.now() }
        : null;
    this.announced = true;
    await this.send(await this.reportFor(outcome, config));
  }

  private async reportFor(outcome: ApplyOutcome, config: DeliveredConfig): Promise<AgentReport> {
    const versions = await this.versions();
    if (outcome.status === 'rejected' || outcome.status === 'failed') {
      const listeners =
        outcome.status === 'failed' && outcome.failedListeners !== undefined
          ? { failedListeners: [...outcome.failedListeners] }
          : {};
      return {
        event: 'failed',
        contentHash: config.contentHash,
        revision: config.revision,
        error: truncate(outcome.message),
        ...listeners,
        ...versions,
      };
    }
    return { ...this.appliedReport(config, outcome.status === 'applied' && outcome.reloaded), ...versions };
  }

  private appliedReport(hashes: { contentHash: string; revision: number }, reloaded: boolean): AgentReport {
    return { event: 'applied', contentHash: hashes.contentHash, revision: hashes.revision, reloaded };
  }

  /**
   * Sends an outcome; when the control plane is away it is kept and sent first thing next time.
   * One the control plane refuses as malformed is dropped: sending it again would never succeed
   * and would hold up everything after it.
   */
  private async send(report: AgentReport): Promise<void> {
    this.unsent = report;
    try {
      await this.deps.client.report(report, this.abort.signal);
    } catch (error) {
      if (!(error instanceof ControlPlaneError && error.failure === 'invalid')) throw error;
      this.log.error({ error: error.message, event: report.event }, 'the control plane refused the report; dropped');
    }
    this.unsent = null;
  }

  private scheduleHeartbeat(delayMs: number): void {
    if (this.stopped) return;
    this.heartbeat = setTimeout(() => {
      void this.beat().finally(() => this.scheduleHeartbeat(this.options.heartbeatSeconds * 1000));
    }, delayMs);
  }

  private async beat(): Promise<void> {
    try {
      await this.deps.client.report({ event: 'heartbeat', ...(await this.versions()) }, this.abort.signal);
    } catch (error) {
      // The poll loop reports connectivity; a missed heartbeat needs no second warning.
      if (!this.stopped) this.log.debug({ err: error }, 'heartbeat not delivered');
    }
  }

  private async versions(): Promise<{ proxyVersion?: string; agentVersion: string }> {
    this.versionCache ??= this.deps.proxyVersion().catch(() => null);
    const proxyVersion = await this.versionCache;
    return { agentVersion: this.deps.agentVersion, ...(proxyVersion !== null && { proxyVersion }) };
  }

  private reachable(): void {
    if (this.failures > 0) this.log.info({ after: this.failures }, 'control plane reachable again');
    this.failures = 0;
  }

  /** Logs what went wrong and what to do about it; returns how long to wait before trying again. */
  private onFailure(error: unknown): number {
    this.failures += 1;
    const slow = this.options.slowRetryMs ?? 60_000;
    const failure = error instanceof ControlPlaneError ? error.failure : null;
    const delay =
      failure === 'unreachable' || failure === 'server'
        ? jitteredDelay(this.retry, this.failures, this.deps.random)
        : jitteredDelay({ initialMs: slow, maxMs: slow, factor: 1 }, 1, this.deps.random);
    this.logFailure(error, delay);
    return delay;
  }

  private logFailure(error: unknown, retryInMs: number): void {
    const node = this.options.node;
    const failure = error instanceof ControlPlaneError ? error.failure : null;
    // An expected failure is one line (no stack, no cause chain); anything else keeps its stack.
    const fields = {
      ...(error instanceof ControlPlaneError ? { error: error.message, status: error.status } : { err: error }),
      retryInMs,
      failures: this.failures,
    };
    switch (failure) {
      case 'unreachable':
      case 'server':
        this.log.warn(
          fields,
          'control plane unreachable or failing; the proxy keeps serving its current files. Check the --control-plane URL, the network and that `switchyard serve` is up',
        );
        return;
      case 'unauthorized':
        this.log.error(
          fields,
          `the control plane refused the agent token (401): set SWITCHYARD_AGENT_TOKEN to the agent token issued for node ${node} (POST /v1/nodes shows it once; POST /v1/tokens with role agent and node ${node} issues another)`,
        );
        return;
      case 'forbidden':
        this.log.error(
          fields,
          `the token is not an agent token for node ${node} (403): issue one with role agent and node ${node}`,
        );
        return;
      case 'not-found':
        this.log.error(
          fields,
          `node ${node} is unknown to the control plane, or the token belongs to another node (404): check --node and the token`,
        );
        return;
      case 'invalid':
        this.log.error(
          fields,
          'the control plane sent an answer the agent cannot use: are agent and control plane the same version?',
        );
        return;
      default:
        this.log.error(fields, 'agent loop failed unexpectedly; retrying');
        return;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done);
    });
  }

  private manifest(config: DeliveredConfig): ReleaseManifest {
    return {
      node: config.node,
      kind: config.kind,
      revision: config.revision,
      contentHash: config.contentHash,
      structuralHash: config.structuralHash,
      stagedAt: new Date().toISOString(),
    };
  }

  private async prune(active: string, previous: Release | null): Promise<void> {
    const removed = await this.deps.store
      .prune({
        keep: this.options.keepReleases ?? 5,
        keepFailed: this.options.keepFailed ?? 3,
        protect: [active, previous?.name ?? null],
      })
      .catch((error: unknown) => {
        this.log.warn({ err: error }, 'could not prune old releases');
        return [];
      });
    if (removed.length > 0) this.log.debug({ removed }, 'pruned old releases');
  }
}

function running(current: Release | null): { contentHash: string; structuralHash: string } | null {
  return current?.manifest ?? null;
}

/** Node reports carry at most 16 KiB of error text and no NUL. */
function truncate(message: string, max = 16_000): string {
  const clean = message.replace(/\0/g, '');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean || 'unknown error';
}
