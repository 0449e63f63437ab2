import { z } from 'zod';
import { canonicalIp, parseCidr, formatCidr } from './ip.js';

/**
 * Field validators shared by every resource. Anything that can end up in a proxy config is
 * restricted to a character set that cannot leave its directive in HAProxy or NGINX syntax.
 */

export const SLUG_RE = /^[a-z][a-z0-9-]{0,62}$/;
export const slug = z
  .string()
  .regex(SLUG_RE, 'must be a slug: a lower-case letter, then lower-case letters, digits or "-", at most 63 characters');

/** An IP literal (IPv4 or IPv6), normalised to its canonical text. */
export const ipAddress = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    const canonical = canonicalIp(text);
    if (canonical === null) {
      ctx.addIssue({ code: 'custom', message: 'must be an IPv4 or IPv6 address literal' });
      return z.NEVER;
    }
    return canonical;
  });

/** A CIDR block such as 10.0.0.0/24 or fd00::/64, normalised; host bits must be zero. */
export const cidr = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    const parsed = parseCidr(text);
    if (parsed === null) {
      ctx.addIssue({ code: 'custom', message: 'must be a CIDR block like 10.0.0.0/24 with no host bits set' });
      return z.NEVER;
    }
    return formatCidr(parsed);
  });

/** A CIDR block, or a bare IP literal which means the single host (/32 or /128). */
export const sourceRange = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    const single = canonicalIp(text);
    if (single !== null) return single.includes(':') ? `${single}/128` : `${single}/32`;
    const parsed = parseCidr(text);
    if (parsed === null) {
      ctx.addIssue({ code: 'custom', message: 'must be an IP address or a CIDR block with no host bits set' });
      return z.NEVER;
    }
    return formatCidr(parsed);
  });

export const port = z.number().int('must be a whole number').min(1).max(65535);

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);
const WILDCARD_RE = new RegExp(`^(?=.{1,253}$)\\*\\.${LABEL}(?:\\.${LABEL})+$`);

/** An RFC 1123 DNS name, lower-cased (ASCII only: IDNs must be given in punycode). */
export const hostname = z
  .string()
  .max(253)
  .transform((s) => s.toLowerCase())
  .refine((s) => HOSTNAME_RE.test(s), 'must be an RFC 1123 host name such as api.example.com');

/** A DNS name that may start with `*.` to match any one leading label. */
export const hostPattern = z
  .string()
  .max(253)
  .transform((s) => s.toLowerCase())
  .refine(
    (s) => HOSTNAME_RE.test(s) || WILDCARD_RE.test(s),
    'must be an RFC 1123 host name, optionally starting with "*." (for example *.example.com)',
  );

/** A URL path: starts with `/`, only unreserved and a few safe sub-delimiter characters. */
export const urlPath = z
  .string()
  .max(1024)
  .regex(
    /^\/[A-Za-z0-9._~%/:@+,=-]*$/,
    'must start with "/" and contain only letters, digits and . _ ~ % / : @ + , = - (no spaces, quotes, ;, #, braces)',
  );

export const headerName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/, 'must be an HTTP header name: letters, digits and -, at most 64');

export const headerValue = z
  .string()
  .regex(/^[A-Za-z0-9._~:/=+@-]{1,256}$/, 'must be 1-256 characters of letters, digits and . _ ~ : / = + @ -');

export const cookieName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'must be a cookie name: a letter, then letters, digits, _ or -, at most 32');

/** Human text that is stored and shown but never rendered into a proxy config. */
export const displayText = z
  .string()
  .trim()
  .min(1)
  .max(128)
  .regex(/^[^\p{C}]*$/u, 'must not contain control or format characters');

const LABEL_KEY_RE = /^[a-z0-9](?:[a-z0-9._/-]{0,61}[a-z0-9])?$/;
const LABEL_VALUE_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
export const labels = z
  .record(
    z.string().regex(LABEL_KEY_RE, 'label keys are lower-case letters, digits and . _ / -, at most 63'),
    z.string().regex(LABEL_VALUE_RE, 'label values are letters, digits and . _ -, at most 63'),
  )
  .refine((r) => Object.keys(r).length <= 32, 'at most 32 labels');

export const vcpu = z.number().min(0).max(1024).multipleOf(0.001, 'must have at most 3 decimals');
export const memoryMb = z.number().int('must be a whole number of MB').min(0).max(4_194_304);

export const resources = z.strictObject({ vcpu, memoryMb });

/** Milliseconds with explicit bounds, so nothing absurd reaches a `timeout` directive. */
export const millis = (min: number, max: number) =>
  z.number().int('must be a whole number of milliseconds').min(min).max(max);

/**
 * A `?cursor=` as a list's `nextCursor` gave it: the last key of a page in the list's sort order.
 * Checked against the key's own shape before it reaches a query, so a NUL byte or any other text
 * no key can hold is a 400 naming `query.cursor`, never a database error. Every pattern bounds
 * its own length.
 */
export const cursorOf = (pattern: RegExp, key: string) =>
  z.string().regex(pattern, `must be the nextCursor of a previous page (${key})`);

/** Paging shared by list endpoints keyed by a name or id (slugs): the last one seen, and a page size. */
export const paging = {
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: cursorOf(SLUG_RE, 'a name').optional(),
};

/** An HTTP If-Match / ETag value as Switchyard issues them: `"<revision>"`. */
export const ETAG_RE = /^(?:W\/)?"(\d{1,18})"$/;
