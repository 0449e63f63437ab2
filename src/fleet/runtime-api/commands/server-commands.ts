import * as arg from './argument-guards.js';
import { UnsafeArgumentError, type CliTarget, type CommandKind, type RuntimeCommand } from './runtime-command.js';
import { SNI_FROM_HOST } from '../../../domain/runtime-state.js';

/**
 * Pure builders: each formats exactly one HAProxy 2.6 CLI command and refuses, by throwing
 * `UnsafeArgumentError`, any argument that could end it or start another.
 */

function command(kind: CommandKind, line: string, description: string, payload: string | null = null, target: CliTarget = 'worker'): RuntimeCommand {
  return Object.freeze({ kind, target, line, payload, description });
}

const server = (backend: string, srv: string): string => `${arg.name('backend', backend)}/${arg.name('server', srv)}`;

const MAX_CONN = 2_147_483_647;

// ---------------------------------------------------------------- reads

export type StatObjectType = 'frontend' | 'backend' | 'server';
const STAT_TYPE_BITS: Record<StatObjectType, number> = { frontend: 1, backend: 2, server: 4 };

export interface StatScope {
  /** A proxy name or its numeric id (iid). */
  readonly proxy: string | number;
  /** Which rows of that proxy; all by default. */
  readonly types?: readonly StatObjectType[];
  /** One server by its numeric id (sid); all by default. */
  readonly serverId?: number;
}

/** `show stat [<iid|proxy> <type> <sid>]`: CSV of every proxy, or of one proxy when scoped. */
export function showStat(scope?: StatScope): RuntimeCommand {
  if (scope === undefined) return command('show-stat', 'show stat', 'read all statistics');
  const proxy = typeof scope.proxy === 'number' ? String(arg.int('proxy', scope.proxy, 1, MAX_CONN)) : arg.name('proxy', scope.proxy);
  const types = scope.types ?? [];
  const mask = types.length === 0 ? -1 : types.reduce((bits, t) => bits | STAT_TYPE_BITS[arg.oneOf('type', t, ['frontend', 'backend', 'server'])], 0);
  const sid = scope.serverId === undefined ? -1 : arg.int('serverId', scope.serverId, 1, MAX_CONN);
  return command('show-stat', `show stat ${proxy} ${mask} ${sid}`, `read statistics of ${proxy}`);
}

/**
 * `show stat -1 <types> -1`: the rows of the given types of every proxy, in one reply. Leaving out
 * listener rows (one per bind line) is what is cheap to leave out without naming each proxy.
 */
export function showStatOfTypes(types: readonly StatObjectType[]): RuntimeCommand {
  if (types.length === 0) throw new UnsafeArgumentError('types', types, 'name at least one of frontend, backend, server');
  const mask = types.reduce((bits, t) => bits | STAT_TYPE_BITS[arg.oneOf('type', t, ['frontend', 'backend', 'server'])], 0);
  return command('show-stat', `show stat -1 ${mask} -1`, `read ${types.join(', ')} statistics of every proxy`);
}

export function showServersState(backend?: string): RuntimeCommand {
  if (backend === undefined) return command('show-servers-state', 'show servers state', 'read the state of every server');
  return command('show-servers-state', `show servers state ${arg.name('backend', backend)}`, `read the state of the servers of ${backend}`);
}

export function showInfo(): RuntimeCommand {
  return command('show-info', 'show info', 'read process information');
}

export function getWeight(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return command('get-weight', `get weight ${id}`, `read the weight of ${id}`);
}

// ---------------------------------------------------------------- servers

export function setServerWeight(backend: string, srv: string, weight: number): RuntimeCommand {
  const id = server(backend, srv);
  return command('set-server-weight', `set server ${id} weight ${arg.int('weight', weight, 0, 256)}`, `set the weight of ${id} to ${weight}`);
}

export function setServerAddr(backend: string, srv: string, ip: string, port: number): RuntimeCommand {
  const id = server(backend, srv);
  const address = arg.ip('ip', ip);
  return command('set-server-addr', `set server ${id} addr ${address} port ${arg.port('port', port)}`, `move ${id} to ${address} port ${port}`);
}

export type ServerAdminState = 'ready' | 'drain' | 'maint';

export function setServerState(backend: string, srv: string, state: ServerAdminState): RuntimeCommand {
  const id = server(backend, srv);
  return command('set-server-state', `set server ${id} state ${arg.oneOf('state', state, ['ready', 'drain', 'maint'])}`, `put ${id} in ${state}`);
}

export function setServerMaxconn(backend: string, srv: string, maxconn: number): RuntimeCommand {
  const id = server(backend, srv);
  return command('set-server-maxconn', `set maxconn server ${id} ${arg.int('maxconn', maxconn, 0, MAX_CONN)}`, `cap ${id} at ${maxconn} connections`);
}

export function setFrontendMaxconn(frontend: string, maxconn: number): RuntimeCommand {
  const fe = arg.name('frontend', frontend);
  return command('set-frontend-maxconn', `set maxconn frontend ${fe} ${arg.int('maxconn', maxconn, 0, MAX_CONN)}`, `cap frontend ${fe} at ${maxconn} connections`);
}

/** Health-check settings for `add server`, the same ones the renderer puts on configured servers. */
export interface ServerCheckOptions {
  readonly intervalMs?: number;
  readonly rise?: number;
  readonly fall?: number;
  /** Check a port other than the server's. */
  readonly port?: number;
  /** `check-ssl`: the check speaks TLS, verified as the server's traffic is. */
  readonly ssl?: boolean;
  /** `no-check-ssl`: a plain check of a TLS server. */
  readonly plain?: boolean;
  /** `verify none` (only states stored before TLS members existed). */
  readonly verifyNone?: boolean;
  /** SNI for TLS checks. */
  readonly sni?: string;
  /** ALPN for TLS checks. */
  readonly alpn?: string;
}

/** TLS to the server, as the renderer puts it on configured servers (see ServerTls). */
export interface ServerTlsOptions {
  readonly verify: 'required' | 'none';
  readonly caFile?: string;
  readonly sni?: string;
  readonly alpn?: string;
  readonly crt?: string;
}

/**
 * Options for `add server`. There is no `cookie`: HAProxy 2.6 refuses it for dynamic servers
 * ("'cookie' option is not accepted for dynamic server"), so a member added at runtime to a
 * cookie-persistent backend gets no cookie until the next reload.
 */
export interface AddServerOptions {
  readonly weight?: number;
  readonly maxconn?: number;
  readonly backup?: boolean;
  /** TLS to the server (its ca-file and crt must be files the running config already loads). */
  readonly tls?: ServerTlsOptions;
  /** Health checks, which run only after `enable health`. */
  readonly check?: ServerCheckOptions;
}

/**
 * `add server`: needs a dynamic balance algorithm; the new server starts in maintenance, ignores
 * `default-server`, and needs `enable server` (and `enable health` when it has checks).
 */
export function addServer(backend: string, srv: string, ip: string, port: number, options: AddServerOptions = {}): RuntimeCommand {
  const id = server(backend, srv);
  const address = arg.ip('ip', ip);
  const endpoint = address.includes(':') ? `[${address}]:${arg.port('port', port)}` : `${address}:${arg.port('port', port)}`;
  const words = [`add server ${id} ${endpoint}`];
  if (options.weight !== undefined) words.push(`weight ${arg.int('weight', options.weight, 0, 256)}`);
  if (options.maxconn !== undefined) words.push(`maxconn ${arg.int('maxconn', options.maxconn, 0, MAX_CONN)}`);
  if (options.backup === true) words.push('backup');
  if (options.tls !== undefined) words.push(...tlsWords(options.tls));
  if (options.check !== undefined) words.push(...checkWords(options.check));
  return command('add-server', words.join(' '), `add ${id} at ${endpoint}`);
}

function checkWords(check: ServerCheckOptions): string[] {
  const words = ['check'];
  if (check.intervalMs !== undefined) words.push(`inter ${arg.int('check.intervalMs', check.intervalMs, 1, 86_400_000)}`);
  if (check.rise !== undefined) words.push(`rise ${arg.int('check.rise', check.rise, 1, 1000)}`);
  if (check.fall !== undefined) words.push(`fall ${arg.int('check.fall', check.fall, 1, 1000)}`);
  if (check.port !== undefined) words.push(`port ${arg.port('check.port', check.port)}`);
  if (check.ssl === true) words.push('check-ssl');
  if (check.plain === true) words.push('no-check-ssl');
  if (check.verifyNone === true) words.push('verify none');
  if (check.sni !== undefined) {
    if (check.ssl !== true) throw new UnsafeArgumentError('check.sni', check.sni, 'used with check.ssl');
    words.push(`check-sni ${arg.token('check.sni', check.sni)}`);
  }
  if (check.alpn !== undefined) words.push(`check-alpn ${arg.oneOf('check.alpn', check.alpn, ['http/1.1'])}`);
  return words;
}

/** The SNI a TLS server may send: a literal host name, or the request's Host without its port. */
const SNI_LITERAL = /^str\([a-z0-9.-]{1,253}\)$/;
const ALPN_LISTS = ['http/1.1', 'h2,http/1.1', 'http/1.1,h2'];

function tlsWords(tls: ServerTlsOptions): string[] {
  const words = ['ssl', `verify ${arg.oneOf('tls.verify', tls.verify, ['required', 'none'])}`];
  if (tls.caFile !== undefined) words.push(`ca-file ${tls.caFile === '@system-ca' ? tls.caFile : arg.file('tls.caFile', tls.caFile)}`);
  if (tls.sni !== undefined) {
    if (tls.sni !== SNI_FROM_HOST && !SNI_LITERAL.test(tls.sni)) throw new UnsafeArgumentError('tls.sni', tls.sni, `str(<host name>) or ${SNI_FROM_HOST}`);
    words.push(`sni ${tls.sni}`);
  }
  if (tls.alpn !== undefined) words.push(`alpn ${arg.oneOf('tls.alpn', tls.alpn, ALPN_LISTS)}`);
  if (tls.crt !== undefined) words.push(`crt ${arg.file('tls.crt', tls.crt)}`);
  return words;
}

export function enableServer(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return command('enable-server', `enable server ${id}`, `take ${id} out of maintenance`);
}

export function disableServer(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return command('disable-server', `disable server ${id}`, `put ${id} in maintenance`);
}

export function enableHealth(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return command('enable-health', `enable health ${id}`, `start health checks of ${id}`);
}

export function disableHealth(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return command('disable-health', `disable health ${id}`, `stop health checks of ${id}`);
}

/** `del server`: refused unless the server is in maintenance and has no connection attached. */
export function delServer(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return command('del-server', `del server ${id}`, `delete ${id}`);
}

// ---------------------------------------------------------------- maps

const versioned = (version: number | undefined): string => (version === undefined ? '' : `@${arg.int('version', version, 0, MAX_CONN)} `);

/** `show map <file>` (or a prepared version `@<v>`); without a file, the list of maps. */
export function showMap(map?: string, version?: number): RuntimeCommand {
  if (map === undefined) return command('show-map', 'show map', 'list the maps');
  const ref = arg.mapRef('map', map);
  return command('show-map', `show map ${versioned(version)}${ref}`, `read map ${ref}`);
}

/** `add map`: appends, even when the key exists (HAProxy keeps duplicates); use setMap to change. */
export function addMap(map: string, key: string, value: string, version?: number): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return command('add-map', `add map ${versioned(version)}${ref} ${arg.token('key', key)} ${arg.token('value', value)}`, `add ${key} to map ${ref}`);
}

/** Many entries in one `add map <file> <<` command; the caller keeps each batch under MAX_PAYLOAD_BYTES. */
export function addMapEntries(map: string, entries: readonly (readonly [string, string])[], version?: number): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  if (entries.length === 0) throw new UnsafeArgumentError('entries', '[]', 'at least one entry');
  const payload = entries.map(([k, v], i) => `${arg.token(`entries.${i}.key`, k)} ${arg.token(`entries.${i}.value`, v)}`).join('\n');
  return command('add-map', `add map ${versioned(version)}${ref} <<`, `add ${entries.length} entries to map ${ref}`, payload);
}

/** `set map`: changes every entry with that key; fails ("entry not found.") when there is none. */
export function setMap(map: string, key: string, value: string): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return command('set-map', `set map ${ref} ${arg.token('key', key)} ${arg.token('value', value)}`, `set ${key} in map ${ref}`);
}

/** `del map`: removes every entry with that key; fails ("Key not found.") when there is none. */
export function delMap(map: string, key: string): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return command('del-map', `del map ${ref} ${arg.token('key', key)}`, `delete ${key} from map ${ref}`);
}

export function clearMap(map: string, version?: number): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return command('clear-map', `clear map ${versioned(version)}${ref}`, `clear map ${ref}`);
}

/** Starts an empty new version of a map (reply: "New version created: <v>"), filled with `@<v>` adds. */
export function prepareMap(map: string): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return command('prepare-map', `prepare map ${ref}`, `prepare a new version of map ${ref}`);
}

/** Atomically replaces the map's entries with those of the prepared version. */
export function commitMap(map: string, version: number): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return command('commit-map', `commit map @${arg.int('version', version, 0, MAX_CONN)} ${ref}`, `commit version ${version} of map ${ref}`);
}

// ---------------------------------------------------------------- certificates

/** `show ssl cert <file>`: the certificate a `crt` line loaded (serial, validity, SHA-1 fingerprint). */
export function showSslCert(certFile: string): RuntimeCommand {
  const path = arg.file('certFile', certFile);
  return command('show-ssl-cert', `show ssl cert ${path}`, `read certificate ${path}`);
}

/** Opens (or updates) a transaction replacing a certificate used by a `crt` line; commitSslCert applies it. */
export function setSslCert(certFile: string, pemText: string): RuntimeCommand {
  const path = arg.file('certFile', certFile);
  return command('set-ssl-cert', `set ssl cert ${path} <<`, `stage a new certificate for ${path}`, arg.pem('pem', pemText));
}

export function commitSslCert(certFile: string): RuntimeCommand {
  const path = arg.file('certFile', certFile);
  return command('commit-ssl-cert', `commit ssl cert ${path}`, `commit the staged certificate for ${path}`);
}

export function abortSslCert(certFile: string): RuntimeCommand {
  const path = arg.file('certFile', certFile);
  return command('abort-ssl-cert', `abort ssl cert ${path}`, `abort the staged certificate for ${path}`);
}

// ---------------------------------------------------------------- master CLI

export function showProc(): RuntimeCommand {
  return command('show-proc', 'show proc', 'list the master and worker processes', null, 'master');
}

/** Master `reload`: in 2.6 it prints nothing and drops the connection; `show proc` tells whether it failed. */
export function reload(): RuntimeCommand {
  return command('reload', 'reload', 'reload the configuration', null, 'master');
}
