import type { VipSnapshot } from '../domain/snapshot.js';

/**
 * How both proxies read a request's path and Host, decided once so that one request reaches the
 * same pool on HAProxy and NGINX (NGINX's own `$uri` is decoded and merged; HAProxy's `path` is
 * raw: left alone, `/%61dmin` reached an `/admin` route on one and not the other).
 *
 * - Routes compare the path **as sent** (no decoding, no slash merging), case-sensitively, up to
 *   the `?`. A path prefix matches whole segments: `/api` matches `/api`, `/api/` and `/api/x`,
 *   never `/apix`; `/api/` matches `/api/` and below but not `/api`.
 * - A path two readers could resolve differently is refused (400) before anything else counts it:
 *   a `.` or `..` segment, a percent-encoded unreserved character (`%61` for `a`, `%2E` for `.`;
 *   RFC 3986 says they are never encoded), `%00`, or a `%` not followed by two hex digits. What
 *   stays (an encoded `/` as `%2F`, `//`) is compared as sent: `/admin%2Fx` is not under `/admin`.
 * - A VIP with `hostnames` answers only requests whose Host (lower-cased, without port or trailing
 *   dot) is one of them or one a route of the VIP matches; any other Host gets 421. A request with
 *   no Host at all (HTTP/1.0) is let through, as NGINX serves it by the VIP's first name.
 *
 * Every pattern here is built from constants and guarded values and holds no backslash, quote or
 * whitespace, so it prints unquoted in both syntaxes.
 */
export const AMBIGUOUS_PATH_STATUS = 400;
export const UNKNOWN_HOST_STATUS = 421;

/** Percent-encodings no client needs: unreserved characters (RFC 3986 §2.3), NUL, or a broken `%`. */
const NEEDLESS_ENCODING =
  '%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE]|00)|%([^0-9a-fA-F]|[0-9a-fA-F]([^0-9a-fA-F]|$)|$)';

/** For a path alone (HAProxy's `path`, from the pattern file HAPROXY_FILES.ambiguousPath): unanchored, a match means refuse. */
export const AMBIGUOUS_PATH_REGEX = `/[.][.]?(/|$)|${NEEDLESS_ENCODING}`;

/** For a path with its query (NGINX's `$request_uri`): only the part before `?` is looked at. */
export const AMBIGUOUS_REQUEST_URI_REGEX = `^[^?]*(/[.][.]?([/?]|$)|${NEEDLESS_ENCODING})`;

/**
 * A route's path prefix as whole segments: the path equal to `exact` (null when the prefix ends
 * with `/` and so names a directory only), or starting with `under`.
 */
export function segmentPrefix(prefix: string): { readonly exact: string | null; readonly under: string } {
  return prefix.endsWith('/') ? { exact: null, under: prefix } : { exact: prefix, under: `${prefix}/` };
}

/**
 * The Host names a VIP answers for, or null when it answers any (no `hostnames`): its hostnames
 * and the hosts its routes match, sorted, exact names apart from `*.` patterns.
 */
export function knownHosts(
  vip: Pick<VipSnapshot, 'hostnames' | 'routes'>,
): { readonly exact: string[]; readonly wildcards: string[] } | null {
  if (vip.hostnames.length === 0) return null;
  const all = [
    ...new Set([...vip.hostnames, ...vip.routes.flatMap((r) => (r.match.host === undefined ? [] : [r.match.host]))]),
  ].sort();
  return { exact: all.filter((h) => !h.startsWith('*.')), wildcards: all.filter((h) => h.startsWith('*.')) };
}

/**
 * `*.example.com` as a regex matching exactly one non-empty leading label, as routes do; with
 * `trailingDot`, also the name with a trailing dot (HAProxy's Host keeps it; NGINX's `$host` not).
 */
export function wildcardHostRegex(pattern: string, options: { trailingDot?: boolean } = {}): string {
  return `^[^.]+${literalDots(pattern.slice(1))}${options.trailingDot === true ? '[.]?' : ''}$`;
}

/** Guarded hosts and paths hold only `.` and `+` of the regex metacharacters. */
export function literalDots(text: string): string {
  return text.replace(/[.+]/g, (c) => `[${c}]`);
}
