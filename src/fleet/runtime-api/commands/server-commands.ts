import * as arg from './argument-guards.js';
import { runtimeCommand, UnsafeArgumentError, type RuntimeCommand } from './runtime-command.js';
import { SNI_FROM_HOST } from '../../../domain/runtime-state.js';

/** Commands on one backend's servers, named `backend/server`: reads, settings, dynamic add and delete. */

const server = (backend: string, srv: string): string => `${arg.name('backend', backend)}/${arg.name('server', srv)}`;

export function showServersState(backend?: string): RuntimeCommand {
  if (backend === undefined)
    return runtimeCommand('show-servers-state', 'show servers state', 'read the state of every server');
  return runtimeCommand(
    'show-servers-state',
    `show servers state ${arg.name('backend', backend)}`,
    `read the state of the servers of ${backend}`,
  );
}

export function getWeight(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand('get-weight', `get weight ${id}`, `read the weight of ${id}`);
}

export function setServerWeight(backend: string, srv: string, weight: number): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand(
    'set-server-weight',
    `set server ${id} weight ${arg.int('weight', weight, 0, 256)}`,
    `set the weight of ${id} to ${weight}`,
  );
}

export function setServerAddr(backend: string, srv: string, ip: string, port: number): RuntimeCommand {
  const id = server(backend, srv);
  const address = arg.ip('ip', ip);
  return runtimeCommand(
    'set-server-addr',
    `set server ${id} addr ${address} port ${arg.port('port', port)}`,
    `move ${id} to ${address} port ${port}`,
  );
}

export type ServerAdminState = 'ready' | 'drain' | 'maint';

export function setServerState(backend: string, srv: string, state: ServerAdminState): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand(
    'set-server-state',
    `set server ${id} state ${arg.oneOf('state', state, ['ready', 'drain', 'maint'])}`,
    `put ${id} in ${state}`,
  );
}

export function setServerMaxconn(backend: string, srv: string, maxconn: number): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand(
    'set-server-maxconn',
    `set maxconn server ${id} ${arg.int('maxconn', maxconn, 0, arg.MAX_INT)}`,
    `cap ${id} at ${maxconn} connections`,
  );
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
export function addServer(
  backend: string,
  srv: string,
  ip: string,
  port: number,
  options: AddServerOptions = {},
): RuntimeCommand {
  const id = server(backend, srv);
  const address = arg.ip('ip', ip);
  const endpoint = address.includes(':')
    ? `[${address}]:${arg.port('port', port)}`
    : `${address}:${arg.port('port', port)}`;
  const words = [`add server ${id} ${endpoint}`];
  if (options.weight !== undefined) words.push(`weight ${arg.int('weight', options.weight, 0, 256)}`);
  if (options.maxconn !== undefined) words.push(`maxconn ${arg.int('maxconn', options.maxconn, 0, arg.MAX_INT)}`);
  if (options.backup === true) words.push('backup');
  if (options.tls !== undefined) words.push(...tlsWords(options.tls));
  if (options.check !== undefined) words.push(...checkWords(options.check));
  return runtimeCommand('add-server', words.join(' '), `add ${id} at ${endpoint}`);
}

function checkWords(check: ServerCheckOptions): string[] {
  const words = ['check'];
  if (check.intervalMs !== undefined)
    words.push(`inter ${arg.int('check.intervalMs', check.intervalMs, 1, 86_400_000)}`);
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
  if (tls.caFile !== undefined)
    words.push(`ca-file ${tls.caFile === '@system-ca' ? tls.caFile : arg.file('tls.caFile', tls.caFile)}`);
  if (tls.sni !== undefined) {
    if (tls.sni !== SNI_FROM_HOST && !SNI_LITERAL.test(tls.sni))
      throw new UnsafeArgumentError('tls.sni', tls.sni, `str(<host name>) or ${SNI_FROM_HOST}`);
    words.push(`sni ${tls.sni}`);
  }
  if (tls.alpn !== undefined) words.push(`alpn ${arg.oneOf('tls.alpn', tls.alpn, ALPN_LISTS)}`);
  if (tls.crt !== undefined) words.push(`crt ${arg.file('tls.crt', tls.crt)}`);
  return words;
}

export function enableServer(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand('enable-server', `enable server ${id}`, `take ${id} out of maintenance`);
}

export function disableServer(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand('disable-server', `disable server ${id}`, `put ${id} in maintenance`);
}

export function enableHealth(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand('enable-health', `enable health ${id}`, `start health checks of ${id}`);
}

export function disableHealth(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand('disable-health', `disable health ${id}`, `stop health checks of ${id}`);
}

/** `del server`: refused unless the server is in maintenance and has no connection attached. */
export function delServer(backend: string, srv: string): RuntimeCommand {
  const id = server(backend, srv);
  return runtimeCommand('del-server', `del server ${id}`, `delete ${id}`);
}
