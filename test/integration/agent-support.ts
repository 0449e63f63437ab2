import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { expect } from 'vitest';
import { OneShotRuntimeClient } from '../../src/fleet/runtime-api/one-shot-runtime-client.js';
import type { ProcList } from '../../src/fleet/replies/show-proc.js';
import { createMasterApi } from '../../src/fleet/runtime-api/runtime-api.js';
import { childProcesses } from '../../src/fleet/agent/process-table.js';
import { parseAgentOptions, type AgentFlags } from '../../src/cli/agent.js';
import { buildAgent } from '../../src/cli/build-agent.js';
import type { Agent } from '../../src/fleet/agent/agent.js';
import type { Caller, TestApp } from '../support/app.js';
import { eventually } from './haproxy-render-support.js';

/** Helpers for agent.test.ts: proxies started and stopped by their own PIDs, logs kept in memory, bounded waits. */

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** A pino logger whose JSON lines are kept, so a test can check what the agent told the operator. */
export function memoryLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const kept: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      kept.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      );
      if (process.env.AGENT_TEST_LOGS) process.stderr.write(chunk);
      done();
    },
  });
  return {
    logger: pino({ level: 'debug' }, sink),
    lines: () => kept.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface ProxyProcess {
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

function track(child: ChildProcess, what: string): ProxyProcess {
  if (child.pid === undefined) throw new Error(`${what} did not start`);
  const pid = child.pid;
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, 'SIGTERM'); // both masters stop their own workers
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The launch line the agent expects, in the foreground: `haproxy -W -db -S <sock> -f <dir>/haproxy.cfg`. */
export function startHaproxy(configDir: string, masterSocket: string): ProxyProcess {
  return track(
    spawn('haproxy', ['-W', '-db', '-S', masterSocket, '-f', join(configDir, 'haproxy.cfg')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'haproxy',
  );
}

/** `nginx -c <dir>/nginx.conf -p <dir>/` with `daemon off`, so the master is our child. */
export function startNginx(configDir: string): ProxyProcess {
  return track(
    spawn('nginx', ['-c', join(configDir, 'nginx.conf'), '-p', `${configDir}/`, '-g', 'daemon off;'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'nginx',
  );
}

export function masterCli(socket: string): { showProc(): Promise<ProcList> } {
  return createMasterApi(new OneShotRuntimeClient({ path: socket }, { target: 'master' }));
}

/** The nginx master's workers that take new connections. */
export async function nginxWorkers(master: number): Promise<number[]> {
  return (await childProcesses(master))
    .filter((p) => p.title === 'nginx: worker process')
    .map((p) => p.pid)
    .sort();
}

/** A stand-in haproxy for the validator: refuses every config while `flag` exists, else runs the real one. */
export function flakyHaproxy(dir: string, flag: string): string {
  const path = join(dir, 'haproxy-flaky');
  writeFileSync(
    path,
    `#!/bin/sh\nif [ "$1" = "-c" ] && [ -e '${flag}' ]; then\n  echo "[ALERT]    (0) : config : node-local check failed (injected by agent.test.ts)" >&2\n  exit 1\nfi\nexec haproxy "$@"\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

/** An admin caller for a control plane the test started itself (TestApp.admin talks to the first one). */
export function adminAt(url: string, token: string): Caller {
  return async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };
}

/**
 * Waits until the node reports it runs the config the control plane serves now, built at
 * `atLeast` (the revision a write answered) or later: right after a write the control plane may
 * still answer from a build that started before it. Returns both.
 */
export async function converged(
  admin: Caller,
  node: string,
  atLeast = 0,
  timeoutMs = 15_000,
): Promise<{ config: any; node: any }> {
  return eventually(
    `${node} to apply its config of revision ${atLeast} or later`,
    async () => {
      const config = (await admin('GET', `/v1/nodes/${node}/config`)).body;
      if (config.revision < atLeast) return undefined;
      const status = (await admin('GET', `/v1/nodes/${node}`)).body;
      return status.status?.appliedHash === config.contentHash ? { config, node: status } : undefined;
    },
    timeoutMs,
    100,
  );
}

/** Waits until the node's status shows an error matching `pattern`. */
export async function nodeError(admin: Caller, node: string, pattern: RegExp, timeoutMs = 15_000): Promise<any> {
  return eventually(
    `${node} to report ${pattern}`,
    async () => {
      const status = (await admin('GET', `/v1/nodes/${node}`)).body;
      return pattern.test(status.status?.lastError ?? '') ? status : undefined;
    },
    timeoutMs,
    100,
  );
}

export async function expectOk(app: TestApp, method: string, path: string, body?: unknown): Promise<any> {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

export const activeRelease = (configDir: string): string => readlinkSync(configDir);
export const failedReleases = (configDir: string): string[] =>
  readdirSync(`${configDir}.releases`).filter((n) => n.endsWith('.failed'));
export const onDisk = (configDir: string, file: string): string => readFileSync(join(configDir, file), 'utf8');

/** Runs the real CLI (`node bin/switchyard.mjs ...`), bounded in time. */
export function runCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO, 'bin', 'switchyard.mjs'), ...args],
      { env: { ...process.env, ...env }, timeout: timeoutMs, cwd: REPO },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

/** A fleet test's node as its agent sees it. */
export interface AgentNode {
  readonly name: string;
  readonly kind: 'haproxy' | 'nginx';
  readonly configDir: string;
  /** The HAProxy master socket the agent reloads through. */
  readonly socket: string;
  readonly token: string;
}

/** Starts a node's agent in-process with short waits and retries (a fleet test's pace); answers it running. */
export function startFastAgent(
  controlPlane: string,
  n: AgentNode,
  logger: Logger,
  extra: Partial<AgentFlags> = {},
): Agent {
  const flags: AgentFlags = {
    controlPlane,
    node: n.name,
    kind: n.kind,
    configDir: n.configDir,
    masterSocket: n.socket,
    haproxyBin: 'haproxy',
    nginxBin: 'nginx',
    wait: '2',
    heartbeat: '1',
    reloadTimeout: '10',
    keepReleases: '3',
    ...extra,
  };
  const agent = buildAgent(parseAgentOptions(flags, { SWITCHYARD_AGENT_TOKEN: n.token }), logger, {
    retry: { initialMs: 100, maxMs: 500, factor: 2 },
    slowRetryMs: 500,
    retryRejectedMs: 500,
  });
  void agent.run();
  return agent;
}
