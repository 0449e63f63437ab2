import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../../../src/fleet/agent/agent.js';
import { AgentStore } from '../../../../src/fleet/agent/agent-store.js';
import {
  ControlPlaneError,
  type AgentReport,
  type ControlPlaneApi,
  type FetchedConfig,
} from '../../../../src/fleet/agent/control-plane-client.js';
import type { DeliveredConfig } from '../../../../src/fleet/agent/delivered-config.js';
import type { ProxyReloader, ReloadOutcome } from '../../../../src/fleet/agent/reload/proxy-reloader.js';
import type { ProxyValidator } from '../../../../src/fleet/agent/proxy-validator.js';
import { createLogger } from '../../../../src/logger.js';
import type { Result } from '../../../../src/util/result.js';

/** The agent's loop against a scripted control plane, validator and proxy; the files are real, in a temp dir. */

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

class FakeControlPlane implements ControlPlaneApi {
  readonly reports: AgentReport[] = [];
  readonly etags: (string | null)[] = [];
  failure: ControlPlaneError | null = null;
  failReports = 0;
  private readonly changes = new EventEmitter();

  constructor(public config: DeliveredConfig) {}

  /** Like a control plane going away: open long polls end with an error. */
  goDown(): void {
    this.failure = new ControlPlaneError('unreachable', 'ECONNREFUSED');
    this.changes.emit('change');
  }

  publish(config: DeliveredConfig): void {
    this.config = config;
    this.changes.emit('change');
  }

  async fetchConfig({
    etag,
    waitSeconds,
    signal,
  }: {
    etag: string | null;
    waitSeconds: number;
    signal?: AbortSignal;
  }): Promise<FetchedConfig> {
    this.etags.push(etag);
    if (this.failure) throw this.failure;
    if (etag !== null && etag === this.config.contentHash && waitSeconds > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.changes.off('change', done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, waitSeconds * 1000);
        this.changes.on('change', done);
        signal?.addEventListener('abort', done);
      });
    }
    if (this.failure) throw this.failure;
    return etag === this.config.contentHash ? { changed: false } : { changed: true, config: this.config };
  }

  async report(report: AgentReport): Promise<void> {
    if (this.failure && report.event !== 'heartbeat') throw this.failure;
    if (report.event !== 'heartbeat' && this.failReports > 0) {
      this.failReports -= 1;
      throw new ControlPlaneError('unreachable', 'ECONNRESET');
    }
    this.reports.push(report);
  }

  outcomes(): AgentReport[] {
    return this.reports.filter((r) => r.event !== 'heartbeat');
  }
}

class FakeProxy implements ProxyReloader, ProxyValidator {
  up = false;
  reloads = 0;
  reject: string | null = null;
  refuseReload: string | null = null;
  /** The next reload never answers, and the agent asking is taken for dead (its lock goes): a crash mid-reload. */
  dieInReload: (() => void) | null = null;
  validations = 0;
  async validate(): Promise<Result> {
    this.validations += 1;
    return this.reject === null ? { ok: true, output: '' } : { ok: false, message: this.reject };
  }
  async running(): Promise<boolean> {
    return this.up;
  }
  async prepare(): Promise<void> {}
  async reload(): Promise<ReloadOutcome> {
    this.reloads += 1;
    if (this.dieInReload !== null) {
      this.dieInReload();
      this.dieInReload = null;
      return new Promise<never>(() => undefined);
    }
    return this.refuseReload === null
      ? { ok: true, detail: 'new worker 2' }
      : { ok: false, message: this.refuseReload };
  }
}

let root: string;
let configDir: string;
let cp: FakeControlPlane;
let proxy: FakeProxy;
let agent: Agent;
let revision = 0;

function version(weight: number, check = '/healthz'): DeliveredConfig {
  revision += 1;
  const cfg = `global\n    server-state-file ${configDir}/state/server-state\nbackend be\n    option httpchk GET ${check}\n    server s1 10.0.0.1:80 weight ${weight}\n`;
  return {
    node: 'edge-1',
    kind: 'haproxy',
    revision,
    contentHash: sha(cfg),
    structuralHash: sha(check),
    files: { 'haproxy.cfg': cfg, 'maps/tenant-caps.map': `a ${weight}\n` },
    heldTenants: [],
    createdAt: 'now',
  };
}

/** What the agent logged at info and above: each failure's line says how long it waits before the next try. */
let logged: { level: number; msg: string; retryInMs?: number }[] = [];
const capturingLogger = () =>
  pino(
    { level: 'info' },
    new Writable({
      write: (chunk: Buffer, _e, done) => {
        logged.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
const retryDelays = (level: number) =>
  logged.filter((l) => l.level === level && l.retryInMs !== undefined).map((l) => l.retryInMs);

function startAgent(over: Partial<ConstructorParameters<typeof Agent>[0]> = {}): Promise<void> {
  agent = newAgent(over);
  return agent.run();
}

function newAgent(over: Partial<ConstructorParameters<typeof Agent>[0]> = {}): Agent {
  return new Agent(
    {
      node: 'edge-1',
      kind: 'haproxy',
      configDir,
      waitSeconds: 1,
      heartbeatSeconds: 60,
      retry: { initialMs: 10, maxMs: 40, factor: 2 },
      slowRetryMs: 30,
      ...over,
    },
    {
      client: cp,
      store: new AgentStore(configDir, createLogger('silent')),
      validator: proxy,
      reloader: proxy,
      logger: capturingLogger(),
      agentVersion: '0.1.0',
      proxyVersion: async () => 'HAProxy version 2.6.12',
      random: () => 0.5,
    },
  );
}

/** The agent acts within milliseconds; the bound is generous for a loaded machine. */
const WAIT = { timeout: 3000, interval: 5 };

const onDisk = (file: string) => readFileSync(join(configDir, file), 'utf8');
const releases = () => readdirSync(`${configDir}.releases`).filter((n) => !n.startsWith('.'));

beforeEach(() => {
  logged = [];
  root = mkdtempSync(join(tmpdir(), 'sy-agent-loop-'));
  configDir = join(root, 'etc');
  proxy = new FakeProxy();
  cp = new FakeControlPlane(version(1));
});
afterEach(async () => {
  await agent?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('the agent loop', () => {
  it('when no proxy runs yet, then it writes the files behind a symlink and reports applied without a reload', async () => {
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'applied' }).toBe(1);
    expect(cp.outcomes()[0]).toMatchObject({
      event: 'applied',
      contentHash: cp.config.contentHash,
      revision: cp.config.revision,
      reloaded: false,
      agentVersion: '0.1.0',
      proxyVersion: 'HAProxy version 2.6.12',
    });
    expect(readlinkSync(configDir)).toMatch(/^etc\.releases\/\d{8}T\d{9}Z-[0-9a-f]{16}$/);
    expect(onDisk('maps/tenant-caps.map')).toBe('a 1\n');
    expect(proxy.reloads).toBe(0);
  });

  it('reloads for a structural change only; a weight change just replaces the files', async () => {
    proxy.up = true;
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    expect(proxy.reloads).toBe(1); // unknown running files beside a running proxy
    cp.publish(version(5));
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'weight applied' }).toBe(2);
    expect(cp.outcomes()[1]).toMatchObject({ event: 'applied', reloaded: false });
    expect(onDisk('maps/tenant-caps.map')).toBe('a 5\n');
    cp.publish(version(5, '/ready'));
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'check applied' }).toBe(3);
    expect(cp.outcomes()[2]).toMatchObject({ event: 'applied', reloaded: true });
    expect(proxy.reloads).toBe(2);
    // Each apply says where its time went. A reload is its own check (the proxy keeps its workers
    // when it refuses the files), so only the change that does not reload was checked first.
    const applied = logged.filter((l) => /^applied /.test(l.msg)) as unknown as {
      msg: string;
      ms: Record<string, number>;
    }[];
    expect(applied.map((l) => [l.msg, Object.keys(l.ms).sort()])).toEqual([
      ['applied and reloaded', ['fetch', 'reload', 'stage', 'total']],
      ['applied without a reload', ['fetch', 'stage', 'total', 'validate']],
      ['applied and reloaded', ['fetch', 'reload', 'stage', 'total']],
    ]);
    expect(proxy.validations).toBe(1);
    for (const { ms } of applied)
      expect(ms.total).toBeGreaterThanOrEqual(ms.stage! + (ms.validate ?? 0) + (ms.reload ?? 0) - 2);
  });

  it('when the validator refuses, then nothing changes, a .failed copy is kept, and it waits for a different config', async () => {
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    const active = readlinkSync(configDir);
    proxy.reject = "[ALERT] config : parsing [haproxy.cfg:3] : unknown keyword 'bogus'";
    const bad = version(7);
    cp.publish(bad);
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'failure reported' }).toBe(2);
    expect(cp.outcomes()[1]).toMatchObject({ event: 'failed', contentHash: bad.contentHash, error: proxy.reject });
    expect(readlinkSync(configDir)).toBe(active);
    expect(releases().filter((n) => n.endsWith('.failed'))).toHaveLength(1);
    await expect
      .poll(() => cp.etags.at(-1), { ...WAIT, message: 'a poll with the rejected hash' })
      .toBe(bad.contentHash);
    proxy.reject = null;
    cp.publish(version(8));
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'next config applied' }).toBe(3);
    expect(onDisk('maps/tenant-caps.map')).toBe('a 8\n');
  });

  it('when the proxy refuses to reload, then the previous release is active again and the failure is reported', async () => {
    proxy.up = true;
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    const active = readlinkSync(configDir);
    proxy.refuseReload = 'haproxy refused the new configuration at reload';
    cp.publish(version(1, '/broken'));
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'failure reported' }).toBe(2);
    expect(cp.outcomes()[1]!.error).toBe('haproxy refused the new configuration at reload');
    expect(readlinkSync(configDir)).toBe(active);
    expect(
      existsSync(join(`${configDir}.releases`, `${releases().find((n) => n.endsWith('.failed'))}`, 'haproxy.cfg')),
    ).toBe(true);
  });

  it('when a running proxy refuses to reload files its check refuses too, the check names the cause and the previous release serves', async () => {
    proxy.up = true;
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    const active = readlinkSync(configDir);
    expect(proxy.validations).toBe(0); // the first reload was the check
    proxy.refuseReload = 'haproxy refused the new configuration at reload (show proc: 1 failed reload)';
    proxy.reject = "[ALERT] config : parsing [haproxy.cfg:4] : unknown keyword 'bogus'";
    const bad = version(1, '/bogus');
    cp.publish(bad);
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'failure reported' }).toBe(2);
    // Reported as the check's refusal (the file's fault, not the node's), as when it ran first.
    expect(cp.outcomes()[1]).toMatchObject({ event: 'failed', contentHash: bad.contentHash, error: proxy.reject });
    expect(proxy).toMatchObject({ reloads: 2, validations: 1 });
    expect(readlinkSync(configDir)).toBe(active);
    expect(releases().filter((n) => n.endsWith('.failed'))).toHaveLength(1);
    expect(logged.find((l) => l.level === 50)?.msg).toMatch(
      /^the proxy refused to reload the new files, which do not pass its check/,
    );
  });

  it('while the control plane is unreachable it keeps the files, backs off, and converges when it returns', async () => {
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    const active = readlinkSync(configDir);
    cp.goDown();
    const polls = cp.etags.length;
    // Backoff: 10, 20, 40, 40 … ms (capped), each jittered to 3/4 of it by random() = 0.5: not a tight loop.
    await expect.poll(() => retryDelays(40).length, WAIT).toBeGreaterThanOrEqual(5);
    expect(retryDelays(40).slice(0, 5)).toEqual([8, 15, 30, 30, 30]);
    expect(
      cp.etags.length - polls,
      'a new poll after each wait (the first failure ended the open one)',
    ).toBeGreaterThanOrEqual(4);
    expect(readlinkSync(configDir)).toBe(active);
    cp.failure = null;
    cp.failReports = 1; // the first report after the outage is lost too: it is sent again
    cp.publish(version(9));
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'converged' }).toBe(2);
    expect(cp.outcomes()[1]).toMatchObject({ event: 'applied', contentHash: cp.config.contentHash });
  });

  it('after a restart it tells the control plane what already runs, without touching the files', async () => {
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    await agent.stop();
    const active = readlinkSync(configDir);
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'announced' }).toBe(2);
    expect(cp.outcomes()[1]).toMatchObject({ event: 'applied', contentHash: cp.config.contentHash, reloaded: false });
    expect(readlinkSync(configDir)).toBe(active);
  });

  it('stops promptly in the middle of a long poll', async () => {
    const running = startAgent({ waitSeconds: 30 });
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    await expect.poll(() => cp.etags.length, { ...WAIT, message: 'long poll' }).toBeGreaterThanOrEqual(2);
    const started = Date.now();
    await agent.stop();
    await running;
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('when the token is refused (401) it says what to fix and retries slowly, without touching the files', async () => {
    const { Writable } = await import('node:stream');
    const { pino } = await import('pino');
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _e, done) => {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    cp.failure = new ControlPlaneError('unauthorized', 'HTTP 401: unknown token', 401);
    agent = new Agent(
      {
        node: 'edge-1',
        kind: 'haproxy',
        configDir,
        waitSeconds: 1,
        heartbeatSeconds: 60,
        retry: { initialMs: 1, maxMs: 1, factor: 1 },
        slowRetryMs: 200,
      },
      {
        client: cp,
        store: new AgentStore(configDir, pino({ level: 'silent' })),
        validator: proxy,
        reloader: proxy,
        logger: pino(sink),
        agentVersion: '0.1.0',
        proxyVersion: async () => null,
        random: () => 0.5,
      },
    );
    void agent.run();
    // Retries keep coming, slowly: each waits the slow retry (200 ms, jittered to 150 by random() = 0.5), never the fast backoff (1 ms).
    await expect.poll(() => cp.etags.length, { ...WAIT, message: 'a second attempt' }).toBeGreaterThanOrEqual(2);
    const errors = lines.filter((l) => l.level === 50) as { msg: string; retryInMs?: number }[];
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors.map((l) => l.retryInMs)).toEqual(errors.map(() => 150));
    expect(errors[0]?.msg).toMatch(/refused the agent token \(401\): set SWITCHYARD_AGENT_TOKEN/);
    expect(existsSync(configDir)).toBe(false);
  });

  it('a second agent on the same configDir refuses to start and touches nothing until the first stops', async () => {
    const { mkdirSync } = await import('node:fs');
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    // What the first agent would have mid-apply: a second one's start-up clean-up used to delete it.
    const staging = join(`${configDir}.releases`, '.staging-in-progress');
    mkdirSync(staging);
    const active = readlinkSync(configDir);
    const second = newAgent();
    await expect(second.run()).rejects.toThrow(
      new RegExp(`another agent \\(pid ${process.pid} on .+\\) manages ${configDir}: stop it first`),
    );
    expect(existsSync(staging)).toBe(true);
    expect(readlinkSync(configDir)).toBe(active);
    expect(await second.once()).toMatchObject({ status: 'refused', message: expect.stringContaining('another agent') });
    expect(cp.outcomes()).toHaveLength(1);
    // Stopped, the first gives the directory up: the next agent starts, clears the leftover, announces.
    await agent.stop();
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'announced' }).toBe(2);
    expect(existsSync(staging)).toBe(false);
  });

  it('when the agent dies between swapping in a release and the verdict on its reload, the next one puts the previous release back and applies the config again with a reload', async () => {
    proxy.up = true;
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    const active = readlinkSync(configDir);
    const journal = join(`${configDir}.releases`, '.swap-in-progress.json');
    let duringReload: { link: string; journal: boolean } | null = null;
    proxy.dieInReload = () => {
      duringReload = { link: readlinkSync(configDir), journal: existsSync(journal) };
      rmSync(join(`${configDir}.releases`, '.agent.lock')); // its process is gone
    };
    const structural = version(2, '/ready');
    cp.publish(structural);
    await expect.poll(() => duringReload, { ...WAIT, message: 'the reload under way' }).not.toBeNull();
    expect(duringReload!.link).not.toBe(active);
    expect(duringReload!.journal).toBe(true);

    // The next agent: the swapped-in release is not what the proxy was proven to run.
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'applied again' }).toBe(2);
    expect(cp.outcomes()[1]).toMatchObject({ event: 'applied', contentHash: structural.contentHash, reloaded: true });
    expect(proxy.reloads).toBe(3);
    expect(readlinkSync(configDir)).not.toBe(active);
    expect(onDisk('haproxy.cfg')).toContain('GET /ready');
    expect(existsSync(journal)).toBe(false);
  });

  it('adopts a directory that was there before the agent', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'haproxy.cfg'), 'hand-made\n');
    void startAgent();
    await expect.poll(() => cp.outcomes().length, { ...WAIT, message: 'first apply' }).toBe(1);
    expect(releases().some((n) => n.endsWith('-adopted'))).toBe(true);
    expect(onDisk('maps/tenant-caps.map')).toBe('a 1\n');
  });
});
