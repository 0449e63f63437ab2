import * as cmd from './commands/server-commands.js';
import type { AddServerOptions, ServerAdminState, StatScope } from './commands/server-commands.js';
import {
  parseGetWeight, parsePreparedVersion, parseServersState, parseShowInfo, parseShowMap, parseShowProc, parseShowStat,
  type MapEntry, type ProcessInfo, type ProcList, type ServerStateRow, type StatRow,
} from '../parse.js';
import { MAX_PAYLOAD_BYTES, type RuntimeCommand } from './commands/runtime-command.js';
import { RuntimeCommandError, type CommandResult, type ExecuteOptions, type RuntimeExecutor } from './runtime-executor.js';

/**
 * Narrow ports over the Runtime API, each naming only what one kind of caller uses; services
 * depend on these and tests pass fakes. Single operations throw `RuntimeCommandError` (an
 * `UpstreamError`) when HAProxy refuses or the command was not executed; `RuntimeBatch` returns
 * a result per command instead.
 */

export interface RuntimeBatch {
  execute(commands: readonly RuntimeCommand[], options?: ExecuteOptions): Promise<CommandResult[]>;
}

export interface RuntimeStats {
  showStat(scope?: StatScope): Promise<StatRow[]>;
}

export interface RuntimeInfo {
  showInfo(): Promise<ProcessInfo>;
}

export interface RuntimeServers {
  serversState(backend?: string): Promise<ServerStateRow[]>;
  getWeight(backend: string, server: string): Promise<{ readonly current: number; readonly initial: number }>;
  setWeight(backend: string, server: string, weight: number): Promise<void>;
  setState(backend: string, server: string, state: ServerAdminState): Promise<void>;
  setAddress(backend: string, server: string, ip: string, port: number): Promise<void>;
  setMaxconn(backend: string, server: string, maxconn: number): Promise<void>;
  /** `add server`, then `enable health` when it has checks, then `enable server`, in one batch. */
  add(backend: string, server: string, ip: string, port: number, options?: AddServerOptions): Promise<void>;
  /** `set server ... state maint` then `del server`; fails while connections are attached. */
  remove(backend: string, server: string): Promise<void>;
}

export interface RuntimeFrontends {
  setMaxconn(frontend: string, maxconn: number): Promise<void>;
}

export interface RuntimeMaps {
  show(map: string): Promise<MapEntry[]>;
  add(map: string, key: string, value: string): Promise<void>;
  set(map: string, key: string, value: string): Promise<void>;
  del(map: string, key: string): Promise<void>;
  clear(map: string): Promise<void>;
  /** Replaces every entry atomically: prepare a version, fill it, commit it. */
  replace(map: string, entries: readonly (readonly [string, string])[]): Promise<void>;
}

export interface RuntimeCertificates {
  /** Stages and commits a new PEM (certificate chain and key) for a file named on a `crt` line. */
  update(certFile: string, pem: string): Promise<void>;
}

export interface RuntimeMaster {
  showProc(): Promise<ProcList>;
  /** Asks the master to reload; whether it worked shows in `showProc()` (failed count, new worker). */
  reload(): Promise<void>;
}

/** Every port over one node's worker CLI; hand each service only the one it needs. */
export interface RuntimeApi {
  readonly batch: RuntimeBatch;
  readonly stats: RuntimeStats;
  readonly info: RuntimeInfo;
  readonly servers: RuntimeServers;
  readonly frontends: RuntimeFrontends;
  readonly maps: RuntimeMaps;
  readonly certificates: RuntimeCertificates;
}

/** Runs commands in one batch and returns their outputs, or throws for the first that did not succeed. */
async function run(executor: RuntimeExecutor, ...commands: RuntimeCommand[]): Promise<string[]> {
  const results = await executor.execute(commands);
  return results.map((result) => {
    if (result.status !== 'ok') throw new RuntimeCommandError(result);
    return result.output;
  });
}

/** Parses an output, turning a parse failure into an upstream error that names the command. */
function parsed<T>(command: RuntimeCommand, parse: (text: string) => T, text: string): T {
  try {
    return parse(text);
  } catch (error) {
    throw new RuntimeCommandError({ status: 'error', command, message: (error as Error).message }, { cause: error });
  }
}

async function one<T>(executor: RuntimeExecutor, command: RuntimeCommand, parse: (text: string) => T): Promise<T> {
  const [output] = await run(executor, command);
  return parsed(command, parse, output!);
}

export function createRuntimeApi(executor: RuntimeExecutor): RuntimeApi {
  const exec = (...commands: RuntimeCommand[]): Promise<void> => run(executor, ...commands).then(() => undefined);
  return {
    batch: { execute: (commands, options) => executor.execute(commands, options) },
    stats: { showStat: (scope) => one(executor, cmd.showStat(scope), parseShowStat) },
    info: { showInfo: () => one(executor, cmd.showInfo(), parseShowInfo) },
    servers: {
      serversState: (backend) => one(executor, cmd.showServersState(backend), parseServersState),
      getWeight: (backend, server) => one(executor, cmd.getWeight(backend, server), parseGetWeight),
      setWeight: (backend, server, weight) => exec(cmd.setServerWeight(backend, server, weight)),
      setState: (backend, server, state) => exec(cmd.setServerState(backend, server, state)),
      setAddress: (backend, server, ip, port) => exec(cmd.setServerAddr(backend, server, ip, port)),
      setMaxconn: (backend, server, maxconn) => exec(cmd.setServerMaxconn(backend, server, maxconn)),
      add: async (backend, server, ip, port, options = {}) => {
        // Two round trips on purpose: a pipelined `enable server` would also run after a refused
        // `add server` and could bring up a same-named server someone put in maintenance.
        await exec(cmd.addServer(backend, server, ip, port, options));
        const enable = [cmd.enableServer(backend, server)];
        await exec(...(options.check === undefined ? enable : [cmd.enableHealth(backend, server), ...enable]));
      },
      remove: (backend, server) => exec(cmd.setServerState(backend, server, 'maint'), cmd.delServer(backend, server)),
    },
    frontends: { setMaxconn: (frontend, maxconn) => exec(cmd.setFrontendMaxconn(frontend, maxconn)) },
    maps: {
      show: (map) => one(executor, cmd.showMap(map), parseShowMap),
      add: (map, key, value) => exec(cmd.addMap(map, key, value)),
      set: (map, key, value) => exec(cmd.setMap(map, key, value)),
      del: (map, key) => exec(cmd.delMap(map, key)),
      clear: (map) => exec(cmd.clearMap(map)),
      replace: async (map, entries) => {
        const version = await one(executor, cmd.prepareMap(map), parsePreparedVersion);
        const fills = payloadChunks(entries).map((chunk) => cmd.addMapEntries(map, chunk, version));
        await exec(...fills, cmd.commitMap(map, version));
      },
    },
    certificates: {
      update: async (certFile, pem) => {
        const [staged, committed] = await executor.execute([cmd.setSslCert(certFile, pem), cmd.commitSslCert(certFile)]);
        if (staged!.status !== 'ok') throw new RuntimeCommandError(staged!);
        if (committed!.status !== 'ok') {
          // Leave no half-done transaction behind for the next update to stumble on.
          await executor.execute([cmd.abortSslCert(certFile)]);
          throw new RuntimeCommandError(committed!);
        }
      },
    },
  };
}

/** The master CLI ports, over a OneShotRuntimeClient on the master socket. */
export function createMasterApi(executor: RuntimeExecutor): RuntimeMaster {
  return {
    showProc: () => one(executor, cmd.showProc(), parseShowProc),
    reload: () => run(executor, cmd.reload()).then(() => undefined),
  };
}

/** Splits entries so each `add map ... <<` payload stays under HAProxy's CLI buffer. */
export function payloadChunks<T extends readonly [string, string]>(entries: readonly T[]): T[][] {
  const budget = MAX_PAYLOAD_BYTES - 1_100; // room for the command line itself
  const chunks: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const entry of entries) {
    const bytes = Buffer.byteLength(entry[0]) + Buffer.byteLength(entry[1]) + 2;
    if (current.length > 0 && size + bytes > budget) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(entry);
    size += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
