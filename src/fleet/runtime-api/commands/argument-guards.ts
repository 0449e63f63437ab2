import { canonicalIp } from '../../../domain/ip.js';
import { UnsafeArgumentError } from './runtime-command.js';

/**
 * Guards for every value a builder puts on a CLI line. HAProxy's CLI splits on whitespace, runs
 * `;`-separated commands one after another and treats `\` as an escape, so none of these may
 * reach it; everything else is refused too unless the argument's grammar needs it.
 */

/** Proxy and server names: HAProxy's own identifier alphabet (it refuses the rest in configs). */
const NAME = /^[A-Za-z0-9_.:-]{1,127}$/;
/** Absolute paths of map and certificate files as they appear in the configuration. */
const FILE = /^\/[A-Za-z0-9._/+-]{1,1023}$/;
/** A map file can also be named by its reference id (`show map` lists them). */
const MAP_ID = /^#\d{1,9}$/;
/** Map keys and values: printable ASCII without whitespace, `;`, backslash or quotes. */
const TOKEN = /^[\x21-\x7e]{1,1024}$/;
const TOKEN_FORBIDDEN = /[;\\'"`]/;

/** HAProxy's largest integer argument (maxconn, proxy and server ids, map versions): a signed 32-bit int. */
export const MAX_INT = 2_147_483_647;

export function name(argument: string, value: string): string {
  if (typeof value !== 'string' || !NAME.test(value))
    throw new UnsafeArgumentError(argument, value, 'a proxy or server name ([A-Za-z0-9_.:-])');
  return value;
}

export function file(argument: string, value: string): string {
  if (typeof value !== 'string' || !FILE.test(value) || value.split('/').includes('..')) {
    throw new UnsafeArgumentError(argument, value, 'an absolute file path without spaces or ..');
  }
  return value;
}

export function mapRef(argument: string, value: string): string {
  if (typeof value === 'string' && MAP_ID.test(value)) return value;
  return file(argument, value);
}

export function token(argument: string, value: string): string {
  if (typeof value !== 'string' || !TOKEN.test(value) || TOKEN_FORBIDDEN.test(value)) {
    throw new UnsafeArgumentError(argument, value, 'printable ASCII without whitespace, ;, \\ or quotes');
  }
  return value;
}

export function int(argument: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new UnsafeArgumentError(argument, value, `an integer in ${min}..${max}`);
  }
  return value;
}

export function port(argument: string, value: number): number {
  // HAProxy itself accepts port 0 and relative ports (`+5`) in `set server addr`: never send them.
  return int(argument, value, 1, 65535);
}

export function ip(argument: string, value: string): string {
  const canonical = typeof value === 'string' ? canonicalIp(value) : null;
  if (canonical === null) throw new UnsafeArgumentError(argument, value, 'an IPv4 or IPv6 literal');
  return canonical;
}

export function oneOf<T extends string>(argument: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw new UnsafeArgumentError(argument, value, `one of ${allowed.join(', ')}`);
  return value;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----\n(?:[A-Za-z0-9+/=]{1,76}\n)+-----END \1-----/g;

/**
 * PEM text for a `<<` payload: only BEGIN/END lines and base64, no empty line (it would end the
 * payload early), no CR. A trailing newline is dropped; the client adds the terminating empty line.
 */
export function pem(argument: string, value: string): string {
  const text = typeof value === 'string' ? value.replace(/\n+$/, '') : '';
  const rest = text.replace(PEM_BLOCK, '').replace(/\n/g, '');
  if (text === '' || rest !== '' || text.includes('\n\n'))
    throw new UnsafeArgumentError(argument, '(PEM)', 'PEM blocks separated by single newlines');
  return text;
}
