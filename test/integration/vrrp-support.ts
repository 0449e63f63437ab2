import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { eventually } from './haproxy-render-support.js';

/**
 * Helpers for vrrp-failover.test.ts: network namespaces the test creates and deletes itself, and
 * processes it starts and stops by their own PIDs. Every address is inside those namespaces
 * (198.18.0.0/24); every wait is bounded.
 */

export const KEEPALIVED_BIN = ['/usr/sbin/keepalived', '/usr/bin/keepalived'].find((p) => existsSync(p)) ?? null;

/** Why the namespace test cannot run here, or null: only root may create namespaces, and keepalived must exist. */
export function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'VIP failover test skipped: it needs root to create network namespaces';
  if (KEEPALIVED_BIN === null)
    return 'VIP failover test skipped: keepalived is not installed (apt-get install keepalived)';
  return null;
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

/** Runs a command inside a namespace, bounded in time; answers its exit code and output. */
export function inNamespace(
  ns: string,
  args: string[],
  timeoutMs = 5_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, ...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** The IPv4 addresses on a namespace's eth0. */
export function addressesIn(ns: string): string[] {
  return [...ip('-n', ns, '-o', '-4', 'addr', 'show', 'dev', 'eth0').matchAll(/inet (\S+)\//g)].map((m) => m[1]!);
}

/** The namespaces among `namespaces` that hold `address` now. */
export function holders(address: string, namespaces: readonly string[]): string[] {
  return namespaces.filter((ns) => addressesIn(ns).includes(address));
}

/** The HTTP status a request from `ns` to `url` gets (0: no answer within a second). */
export async function statusFrom(ns: string, url: string): Promise<number> {
  const { output } = await inNamespace(
    ns,
    ['curl', '-s', '-m', '1', '-o', '/dev/null', '-w', '%{http_code}', url],
    3_000,
  );
  return Number(output.trim()) || 0;
}

/**
 * Waits (polling every 25 ms) until `address` is held by `ns` and by no other namespace; answers
 * how long that took from `since`.
 */
export async function movedTo(
  address: string,
  ns: string,
  all: readonly string[],
  since: number,
  timeoutMs = 10_000,
): Promise<number> {
  return eventually(
    `${address} to be up in ${ns} only`,
    async () => {
      const now = holders(address, all);
      return now.length === 1 && now[0] === ns ? Date.now() - since : undefined;
    },
    timeoutMs,
    25,
  );
}

/**
 * Waits (polling every 25 ms) until `address` is held by exactly one namespace, whichever; answers
 * it and how long that took from `since`.
 */
export async function heldByOne(
  address: string,
  all: readonly string[],
  since: number,
  timeoutMs = 10_000,
): Promise<{ ns: string; ms: number }> {
  return eventually(
    `${address} to be up in exactly one namespace`,
    async () => {
      const now = holders(address, all);
      return now.length === 1 ? { ns: now[0]!, ms: Date.now() - since } : undefined;
    },
    timeoutMs,
    25,
  );
}

/** A process the test started; stopped by its PID (or its process group, for a proxy and its workers). */
export interface Started {
  readonly pid: number;
  output(): string;
  /** Resolves when it has exited. */
  readonly exited: Promise<void>;
  alive(): boolean;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a process in its own process group (its pid is the group id), keeping its output. */
export function start(command: string, args: string[]): Started {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid === undefined) throw new Error(`${command} did not start`);
  const pid = child.pid;
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  let done = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      done = true;
      resolve();
    }),
  );
  return {
    pid,
    output: () => output,
    exited,
    alive: () => !done,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (done) return;
      try {
        process.kill(-pid, signal);
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** What wrk printed, as numbers: requests, and the errors it counted. */
export interface WrkSummary {
  readonly requests: number;
  readonly connectErrors: number;
  readonly readErrors: number;
  readonly writeErrors: number;
  readonly timeouts: number;
  readonly non2xx: number;
}

export function parseWrk(text: string): WrkSummary {
  const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: num(/(\d+) requests in /),
    connectErrors: Number(socket?.[1] ?? 0),
    readErrors: Number(socket?.[2] ?? 0),
    writeErrors: Number(socket?.[3] ?? 0),
    timeouts: Number(socket?.[4] ?? 0),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
  };
}

/** How many times keepalived said an instance entered `state` (its console log, `-l`). */
export const entered = (log: string, state: 'BACKUP' | 'MASTER' | 'FAULT'): number =>
  log.split(`Entering ${state} STATE`).length - 1;
