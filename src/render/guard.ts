import { CHECK_TYPES, type HealthCheck } from '../domain/pool.js';
/**
 * The render-side guard: the last line of defence behind the API schemas. Every value a view
 * model puts into a config passes one of these checks, which throw `UnsafeValueError` for any
 * character that could end its directive or start another (newline, `;`, `{`, `}`, `#`, quotes,
 * backslash, `$`, whitespace, control characters), so injection is impossible by construction.
 */
export class UnsafeValueError extends Error {
  override readonly name = 'UnsafeValueError';
  constructor(
    readonly field: string,
    readonly value: string,
    readonly rule: string,
  ) {
    super(`unsafe value for ${field}: ${JSON.stringify(value.slice(0, 80))} is not ${rule}`);
  }
}

const RULES = {
  /** Names we build ourselves: tenant, VIP, pool, member slugs and their compositions. */
  name: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/,
  /** IPv4 or IPv6 literal (already canonical). */
  ip: /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:.]{2,45})$/,
  /** CIDR blocks. */
  cidr: /^(?:\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2}|[0-9a-f:.]{2,45}\/\d{1,3})$/,
  /** DNS names, optionally with a leading `*.`. */
  host: /^(?:\*\.)?[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/,
  /** URL paths. */
  path: /^\/[A-Za-z0-9._~%/:@+,=-]{0,1023}$/,
  headerName: /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/,
  headerValue: /^[A-Za-z0-9._~:/=+@-]{1,256}$/,
  /** Absolute file system paths we generate. */
  file: /^\/[A-Za-z0-9._/-]{1,1023}$/,
  /** HTTP status lists such as 200-399,404. */
  status: /^[0-9,-]{3,128}$/,
  /** Slugs, as the API issues them: generated names join them with `_`, which a slug never holds. */
  slug: /^[a-z][a-z0-9-]{0,62}$/,
  cookie: /^[A-Za-z][A-Za-z0-9_-]{0,31}$/,
  /** An absolute directory with no `.` or `..` segment, so joined file names cannot climb out of it. */
  dir: /^(?!.*\/\.{1,2}(?:\/|$))\/[A-Za-z0-9._/-]{0,1000}$/,
  /**
   * Any string of a snapshot that is not printed today: the union of the characters the printed
   * fields allow, so a field printed tomorrow cannot smuggle in what the specific rules refuse.
   */
  text: /^[A-Za-z0-9._~:/=+@%,*-]{0,1100}$/,
} as const;

export type GuardRule = keyof typeof RULES;

export function safe(rule: GuardRule, field: string, value: string): string {
  if (typeof value !== 'string' || !RULES[rule].test(value)) throw new UnsafeValueError(field, String(value), rule);
  return value;
}

/** The same test without the throw, for scans that name the offending field only once found. */
export function isSafe(rule: GuardRule, value: string): boolean {
  return typeof value === 'string' && RULES[rule].test(value);
}

export function safeInt(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UnsafeValueError(field, String(value), `an integer in ${min}..${max}`);
  }
  return value;
}

export function safeOneOf<T extends string>(field: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UnsafeValueError(field, String(value), `one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** PEM material: only base64 PEM blocks and their BEGIN/END lines. */
export function safePem(field: string, value: string): string {
  if (!/^(?:-----BEGIN [A-Z ]{1,40}-----\n[A-Za-z0-9+/=\n]+-----END [A-Z ]{1,40}-----\n?)+$/.test(value)) {
    throw new UnsafeValueError(field, value, 'PEM');
  }
  return value;
}

/** A health-check spec, every field guarded: each proxy kind refuses the same input, whatever it renders of it. */
export function safeHealthCheck(at: string, check: HealthCheck): HealthCheck {
  return {
    type: safeOneOf(`${at}.type`, check.type, CHECK_TYPES),
    path: safe('path', `${at}.path`, check.path),
    expectedStatus: safe('status', `${at}.expectedStatus`, check.expectedStatus),
    host: check.host === null ? null : safe('host', `${at}.host`, check.host),
    port: check.port === null ? null : safeInt(`${at}.port`, check.port, 1, 65535),
    intervalMs: safeInt(`${at}.intervalMs`, check.intervalMs, 100, 3_600_000),
    timeoutMs: safeInt(`${at}.timeoutMs`, check.timeoutMs, 10, 600_000),
    rise: safeInt(`${at}.rise`, check.rise, 1, 100),
    fall: safeInt(`${at}.fall`, check.fall, 1, 100),
  };
}
