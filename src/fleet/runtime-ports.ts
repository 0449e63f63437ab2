import type { StatScope, AddServerOptions, ServerAdminState } from './commands.js';
import type { MapEntry, ProcessInfo, ProcList, ServerStateRow, StatRow } from './parse.js';
import type { RuntimeCommand } from './runtime-command.js';
import type { CommandResult, ExecuteOptions } from './runtime-executor.js';

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
