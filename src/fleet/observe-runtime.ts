import type { DesiredRuntime, ObservedRuntime, ObservedServer } from '../domain/runtime-state.js';
import { getMap, showMap } from './runtime-api/commands/map-commands.js';
import { showServersState } from './runtime-api/commands/server-commands.js';
import { showSslCert } from './runtime-api/commands/ssl-cert-commands.js';
import { showStat, showStatOfTypes } from './runtime-api/commands/stat-commands.js';
import { parseGetMap } from './replies/get-map.js';
import { parseShowMap } from './replies/show-map.js';
import { parseServerStateEntries, type ServerStateEntry } from './replies/show-servers-state.js';
import { parseShowSslCert } from './replies/show-ssl-cert.js';
import { parseStatColumns } from './replies/show-stat.js';
import type { RuntimeCommand } from './runtime-api/commands/runtime-command.js';
import type { CommandResult } from './runtime-api/runtime-executor.js';

export interface ObserveOptions {
  /**
   * Also read every server's `show stat` row, for its backup flag and sessions. Only previews
   * want it: a server changing sides is a reload reason, never a command, and sessions matter
   * only for servers being taken out, which `sessionReads` asks about one by one. On a node with
   * 10,000 servers the full `show stat` is ~10 MB of CSV, most of an observation's cost.
   */
  readonly serverStats?: boolean;
}

/**
 * The files an observation reads besides servers and stats: the rate-limit map and the
 * certificates. Taken from the desired runtime, or guessed before it is known (the map's path
 * depends on the node alone; certificates as the last pass had them) so the read can start
 * while the desired state is still loading; `certificateReads` completes a wrong guess.
 */
export interface ObservationTarget {
  readonly mapFile: string;
  readonly certificateFiles: readonly string[];
}

export function observationTarget(desired: DesiredRuntime): ObservationTarget {
  return { mapFile: desired.capsMap.file, certificateFiles: desired.certificates.map((c) => c.file) };
}

const targetOf = (x: DesiredRuntime | ObservationTarget): ObservationTarget =>
  'capsMap' in x ? observationTarget(x) : x;

/**
 * Reading what a HAProxy process holds, in one pipelined batch: `show servers state` (addresses,
 * weights, admin and operational states, check verdicts), the frontend and backend rows of
 * `show stat` (frontend caps, which backends run), the rate-limit map and each certificate file.
 */
export function observeCommands(
  what: DesiredRuntime | ObservationTarget,
  options: ObserveOptions = {},
): RuntimeCommand[] {
  const target = targetOf(what);
  return [
    showServersState(),
    showStatOfTypes(options.serverStats === true ? ['frontend', 'backend', 'server'] : ['frontend', 'backend']),
    showMap(target.mapFile),
    ...target.certificateFiles.map((file) => showSslCert(file)),
  ];
}

export type Observation =
  | {
      readonly ok: true;
      readonly observed: ObservedRuntime;
      /** A server's numeric ids (iid, sid): what scopes a `show stat` to it. */
      idsOf(backend: string, server: string): readonly [number, number] | undefined;
    }
  | { readonly ok: false; readonly error: string };

const STAT_COLUMNS = ['pxname', 'svname', 'type', 'slim', 'scur', 'bck'] as const;
// `show stat` type column: 0 frontend, 1 backend, 2 server.
const FRONTEND = '0';
const BACKEND = '1';
const SERVER = '2';

/**
 * Turns the replies to `observeCommands(what)` into an observation. A refused `show map` or
 * `show ssl cert` means the process has not loaded that file (a reload will); a reply that never
 * came, or a state or stat read that failed, makes the whole observation unusable. Backup flags
 * and sessions are filled from server rows when the stat reply has them, and left null otherwise.
 */
export function readObservation(
  what: DesiredRuntime | ObservationTarget,
  results: readonly CommandResult[],
): Observation {
  const target = targetOf(what);
  const lost = results.find((r) => r.status === 'not-executed');
  if (lost !== undefined) return { ok: false, error: lost.message };
  const [state, stat, map, ...certs] = results;
  for (const r of [state, stat]) {
    if (r === undefined) return { ok: false, error: 'missing replies' };
    if (r.status !== 'ok') return { ok: false, error: `${r.command.line}: ${r.message}` };
  }
  try {
    const rows = parseStatColumns(ok(stat), STAT_COLUMNS);
    const serverRows = rows.some((r) => r.type === SERVER)
      ? new Map(rows.filter((r) => r.type === SERVER).map((r) => [`${r.pxname}/${r.svname}`, r]))
      : null;
    const entries = parseServerStateEntries(ok(state));
    const servers = entries.map(
      (entry): ObservedServer => observedServer(entry, serverRows?.get(`${entry.backend}/${entry.name}`)),
    );
    const certificates = readCertificates(target.certificateFiles, certs);
    return {
      ok: true,
      idsOf: idLookup(entries),
      observed: {
        backends: rows.filter((r) => r.type === BACKEND).map((r) => r.pxname),
        frontends: rows
          .filter((r) => r.type === FRONTEND)
          .map((r) => ({ name: r.pxname, maxconn: count(r.slim) ?? 0, sessions: count(r.scur) })),
        servers,
        capsMap: map?.status === 'ok' ? parseShowMap(map.output).map(({ key, value }) => ({ key, value })) : null,
        certificates,
      },
    };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * The objects of a few tenants on one node, by the names the config gives them
 * (render/haproxy-runtime-view's tenantRuntimeNames): what a pass scoped to them reads.
 */
export interface RuntimeScope {
  readonly frontends: readonly string[];
  readonly backends: readonly string[];
  readonly mapKeys: readonly string[];
  readonly certificateFiles: readonly string[];
}

/**
 * Reading only the scope's objects, in one pipelined batch: each backend's `show servers state`,
 * each frontend's `show stat` row, each map key's `get map`, each certificate's `show ssl cert`.
 * What it costs grows with the scope, not with the node: a one-member change on a node of 10,000
 * tenants reads one backend, one frontend and one key, where a whole read parses every server.
 */
export function scopedObserveCommands(mapFile: string, scope: RuntimeScope): RuntimeCommand[] {
  return [
    ...scope.backends.map((b) => showServersState(b)),
    ...scope.frontends.map((f) => showStat({ proxy: f, types: ['frontend'] })),
    ...scope.mapKeys.map((k) => getMap(mapFile, k)),
    ...scope.certificateFiles.map((file) => showSslCert(file)),
  ];
}

/**
 * Turns the replies to `scopedObserveCommands(mapFile, scope)` into an observation of the scope
 * alone: the servers of its backends, its frontends, its keys' map entries, its certificates. A
 * backend or frontend the process does not run is answered with an error ("Can't find backend.",
 * "No such proxy.") and is absent from the observation, as a whole read would leave it out; an
 * unknown map (the process has not loaded it) makes the map unknown (null). A reply that never
 * came makes the observation unusable.
 */
export function readScopedObservation(scope: RuntimeScope, results: readonly CommandResult[]): Observation {
  const lost = results.find((r) => r.status === 'not-executed');
  if (lost !== undefined) return { ok: false, error: lost.message };
  const expected =
    scope.backends.length + scope.frontends.length + scope.mapKeys.length + scope.certificateFiles.length;
  if (results.length !== expected) return { ok: false, error: 'missing replies' };
  let at = 0;
  const next = (n: number) => results.slice(at, (at += n));
  const backendReplies = next(scope.backends.length);
  const frontendReplies = next(scope.frontends.length);
  const mapReplies = next(scope.mapKeys.length);
  const certificateReplies = next(scope.certificateFiles.length);
  try {
    const entries: ServerStateEntry[] = [];
    const backends: string[] = [];
    backendReplies.forEach((r, i) => {
      if (r.status !== 'ok') return;
      backends.push(scope.backends[i]!);
      entries.push(...parseServerStateEntries(r.output));
    });
    const frontends: ObservedRuntime['frontends'][number][] = [];
    for (const r of frontendReplies) {
      if (r.status !== 'ok') continue;
      for (const row of parseStatColumns(r.output, STAT_COLUMNS)) {
        if (row.type === FRONTEND)
          frontends.push({ name: row.pxname, maxconn: count(row.slim) ?? 0, sessions: count(row.scur) });
      }
    }
    const mapUnknown = mapReplies.some((r) => r.status !== 'ok');
    const capsMap = mapUnknown
      ? null
      : mapReplies.flatMap((r) => {
          const found = parseGetMap(ok(r));
          return found.found ? [{ key: found.key, value: found.value }] : [];
        });
    return {
      ok: true,
      idsOf: idLookup(entries),
      observed: {
        backends,
        frontends,
        servers: entries.map((entry) => observedServer(entry, undefined)),
        capsMap: scope.mapKeys.length === 0 ? [] : capsMap,
        certificates: readCertificates(scope.certificateFiles, certificateReplies),
      },
    };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** Ids by server, indexed on first use: most passes ask for none (see sessionReads). */
function idLookup(
  entries: readonly ServerStateEntry[],
): (backend: string, server: string) => readonly [number, number] | undefined {
  let index: Map<string, readonly [number, number]> | undefined;
  return (backend, server) => {
    index ??= new Map(entries.map((e) => [`${e.backend}/${e.name}`, [e.proxyId, e.serverId] as const]));
    return index.get(`${backend}/${server}`);
  };
}

function observedServer(
  entry: ServerStateEntry,
  stat: { readonly scur: string; readonly bck: string } | undefined,
): ObservedServer {
  return {
    backend: entry.backend,
    name: entry.name,
    address: entry.address,
    port: entry.port,
    weight: entry.weight,
    admin: entry.admin,
    backup: stat === undefined ? null : (count(stat.bck) ?? 0) > 0,
    running: entry.opState !== 'stopped',
    sessions: stat === undefined ? null : (count(stat.scur) ?? 0),
    secondsInState: entry.secondsInState,
    checkStatus: entry.check?.status ?? null,
    checkDescription: entry.check?.description ?? null,
  };
}

/** A scoped `show stat` for one server whose sessions the plan needs. */
export interface SessionRead {
  readonly backend: string;
  readonly server: string;
  readonly command: RuntimeCommand;
}

/**
 * The servers whose sessions decide the next step and were not read: those running in a backend
 * that stays, with dynamic members, that the desired state no longer names (a removal under way).
 * Each is one `show stat <iid> 4 <sid>`, so a pass that removes nothing reads no server row.
 */
export function sessionReads(desired: DesiredRuntime, observation: Extract<Observation, { ok: true }>): SessionRead[] {
  const running = new Set(observation.observed.backends);
  const wanted = new Map(
    desired.backends
      .filter((b) => b.dynamicMembers && running.has(b.name))
      .map((b) => [b.name, new Set(b.servers.map((s) => s.name))]),
  );
  const reads: SessionRead[] = [];
  for (const s of observation.observed.servers) {
    const names = wanted.get(s.backend);
    if (names === undefined || names.has(s.name) || s.sessions !== null) continue;
    const [proxy, server] = observation.idsOf(s.backend, s.name) ?? [];
    if (proxy === undefined || server === undefined) continue;
    reads.push({
      backend: s.backend,
      server: s.name,
      command: showStat({ proxy, types: ['server'], serverId: server }),
    });
  }
  return reads;
}

/**
 * The observation with the sessions of `reads` filled from their replies. A reply that failed, or
 * names another server (ids are reused once a server is deleted), leaves the sessions unknown,
 * which the planner treats as attached: the next pass reads them again.
 */
export function withSessions(
  observation: Extract<Observation, { ok: true }>,
  reads: readonly SessionRead[],
  results: readonly CommandResult[],
): Observation {
  if (reads.length === 0) return observation;
  const lost = results.find((r) => r.status === 'not-executed');
  if (lost !== undefined) return { ok: false, error: lost.message };
  const sessions = new Map<string, number>();
  try {
    reads.forEach((read, i) => {
      const r = results[i];
      if (r?.status !== 'ok') return;
      const row = parseStatColumns(r.output, STAT_COLUMNS).find(
        (x) => x.type === SERVER && x.pxname === read.backend && x.svname === read.server,
      );
      if (row !== undefined) sessions.set(`${read.backend}/${read.server}`, count(row.scur) ?? 0);
    });
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  const servers = observation.observed.servers.map((s) => {
    const n = sessions.get(`${s.backend}/${s.name}`);
    return n === undefined ? s : { ...s, sessions: n };
  });
  return { ...observation, observed: { ...observation.observed, servers } };
}

/** Leaf SHA-1 per file; a refused `show ssl cert` means the process does not hold the file (null). */
function readCertificates(
  files: readonly string[],
  results: readonly (CommandResult | undefined)[],
): Map<string, string | null> {
  const certificates = new Map<string, string | null>();
  files.forEach((file, i) => {
    const r = results[i];
    certificates.set(file, r?.status === 'ok' ? parseShowSslCert(r.output).sha1 : null);
  });
  return certificates;
}

/** The certificate files the desired runtime names that an observation begun on a guess did not read. */
export function certificateReads(desired: DesiredRuntime, observation: Extract<Observation, { ok: true }>): string[] {
  return desired.certificates.map((c) => c.file).filter((file) => !observation.observed.certificates.has(file));
}

/** The observation with the certificates of `files` read from their `show ssl cert` replies. */
export function withCertificates(
  observation: Extract<Observation, { ok: true }>,
  files: readonly string[],
  results: readonly CommandResult[],
): Observation {
  if (files.length === 0) return observation;
  const lost = results.find((r) => r.status === 'not-executed');
  if (lost !== undefined) return { ok: false, error: lost.message };
  try {
    const read = readCertificates(files, results);
    return {
      ...observation,
      observed: { ...observation.observed, certificates: new Map([...observation.observed.certificates, ...read]) },
    };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

function ok(result: CommandResult | undefined): string {
  return result?.status === 'ok' ? result.output : '';
}

/** A plain non-negative integer cell, or null (empty, or anything else). */
function count(cell: string): number | null {
  return /^\d+$/.test(cell) ? Number(cell) : null;
}
