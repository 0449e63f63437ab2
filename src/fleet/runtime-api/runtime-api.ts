import { setFrontendMaxconn } from './commands/frontend-commands.js';
import {
  addMap,
  addMapEntries,
  clearMap,
  commitMap,
  delMap,
  prepareMap,
  setMap,
  showMap,
} from './commands/map-commands.js';
import { reload, showProc } from './commands/master-commands.js';
import {
  addServer,
  delServer,
  enableHealth,
  enableServer,
  getWeight,
  setServerAddr,
  setServerMaxconn,
  setServerState,
  setServerWeight,
  showServersState,
  type AddServerOptions,
  type ServerAdminState,
} from './commands/server-commands.js';
import { MAX_PAYLOAD_BYTES, type RuntimeCommand } from './commands/runtime-command.js';
import { abortSslCert, commitSslCert, setSslCert } from './commands/ssl-cert-commands.js';
import { showInfo, showStat, type StatScope } from './commands/stat-commands.js';
import { parseGetWeight } from '../replies/get-weight.js';
import { parsePreparedVersion } from '../replies/prepare-map.js';
import { parseShowInfo, type ProcessInfo } from '../replies/show-info.js';
import { parseShowMap, type MapEntry } from '../replies/show-map.js';
import { parseShowProc, type ProcList } from '../replies/show-proc.js';
import { parseServersState, type ServerStateRow } from '../replies/show-servers-state.js';
import { parseShowStat, type StatRow } from '../replies/show-stat.js';
import {
  RuntimeCommandError,
  type CommandResult,
  type ExecuteOptions,
  type RuntimeExecutor,
} from './runtime-executor.js';

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
    stats: { showStat: (scope) => one(executor, showStat(scope), parseShowStat) },
    info: { showInfo: () => one(executor, showInfo(), parseShowInfo) },
    servers: {
      serversState: (backend) => one(executor, showServersState(backend), parseServersState),
      getWeight: (backend, server) => one(executor, getWeight(backend, server), parseGetWeight),
      setWeight: (backend, server, weight) => exec(setServerWeight(backend, server, weight)),
      setState: (backend, server, state) => exec(setServerState(backend, server, state)),
      setAddress: (backend, server, ip, port) => exec(setServerAddr(backend, server, ip, port)),
      setMaxconn: (backend, server, maxconn) => exec(setServerMaxconn(backend, server, maxconn)),
      add: async (backend, server, ip, port, options = {}) => {
        // Two round trips on purpose: a pipelined `enable server` would also run after a refused
        // `add server` and could bring up a same-named server someone put in maintenance.
        await exec(addServer(backend, server, ip, port, options));
        const enable = [enableServer(backend, server)];
        await exec(...(options.check === undefined ? enable : [enableHealth(backend, server), ...enable]));
      },
      remove: (backend, server) => exec(setServerState(backend, server, 'maint'), delServer(backend, server)),
    },
    frontends: { setMaxconn: (frontend, maxconn) => exec(setFrontendMaxconn(frontend, maxconn)) },
    maps: {
      show: (map) => one(executor, showMap(map), parseShowMap),
      add: (map, key, value) => exec(addMap(map, key, value)),
      set: (map, key, value) => exec(setMap(map, key, value)),
      del: (map, key) => exec(delMap(map, key)),
      clear: (map) => exec(clearMap(map)),
      replace: async (map, entries) => {
        const version = await one(executor, prepareMap(map), parsePreparedVersion);
        const fills = payloadChunks(entries).map((chunk) => addMapEntries(map, chunk, version));
        await exec(...fills, commitMap(map, version));
      },
    },
    certificates: {
      update: async (certFile, pem) => {
        const [staged, committed] = await executor.execute([setSslCert(certFile, pem), commitSslCert(certFile)]);
        if (staged!.status !== 'ok') throw new RuntimeCommandError(staged!);
        if (committed!.status !== 'ok') {
          // Leave no half-done transaction behind for the next update to stumble on.
          await executor.execute([abortSslCert(certFile)]);
          throw new RuntimeCommandError(committed!);
        }
      },
    },
  };
}

/** The master CLI ports, over a OneShotRuntimeClient on the master socket. */
export function createMasterApi(executor: RuntimeExecutor): RuntimeMaster {
  return {
    showProc: () => one(executor, showProc(), parseShowProc),
    reload: () => run(executor, reload()).then(() => undefined),
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
