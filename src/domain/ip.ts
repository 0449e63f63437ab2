import { isIP } from 'node:net';

/** An IP address as a number, so ranges can be walked and compared. */
export interface ParsedIp {
  readonly family: 4 | 6;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

/**
 * Canonical text of an IP literal (IPv4 dotted quad, IPv6 compressed lower case),
 * or null when the text is not exactly one IP literal. Zone ids and brackets are refused.
 */
export function canonicalIp(text: string): string | null {
  const family = isIP(text);
  if (family === 4) {
    // node accepts only plain dotted quads, but leading zeros are ambiguous (octal to some tools).
    return hasLeadingZero(text) ? null : text;
  }
  if (family === 6) {
    if (text.includes('%')) return null;
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  }
  return null;
}

/** True when a part of a dotted quad starts with 0 and has more digits ("10.01.0.1"). Scans in place: the desired-state load checks every member. */
function hasLeadingZero(quad: string): boolean {
  for (let i = 0; i < quad.length - 1; i++) {
    if (
      quad.charCodeAt(i) === 48 /* 0 */ &&
      (i === 0 || quad.charCodeAt(i - 1) === 46) /* . */ &&
      quad.charCodeAt(i + 1) !== 46
    )
      return true;
  }
  return false;
}

export function parseIp(text: string): ParsedIp | null {
  const canonical = canonicalIp(text);
  if (canonical === null) return null;
  if (!canonical.includes(':')) {
    const value = canonical.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { family: 4, value };
  }
  return { family: 6, value: ipv6ToBigInt(canonical) };
}

function ipv6ToBigInt(text: string): bigint {
  let head = text;
  let tail = '';
  const gap = text.indexOf('::');
  if (gap >= 0) {
    head = text.slice(0, gap);
    tail = text.slice(gap + 2);
  }
  const groups = (part: string): string[] => {
    if (part === '') return [];
    const out: string[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const v4 = parseIp(piece);
        if (!v4) throw new Error(`bad embedded IPv4 ${piece}`);
        out.push(((v4.value >> 16n) & 0xffffn).toString(16), (v4.value & 0xffffn).toString(16));
      } else {
        out.push(piece);
      }
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  const all = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => ((ip.value >> shift) & 0xffn).toString()).join('.');
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((ip.value >> shift) & 0xffffn).toString(16));
  return canonicalIp(groups.join(':'))!;
}

/** Parses `a.b.c.d/n` or `x::/n`; the address must be the network address (no host bits set). */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  const bits = BITS[ip.family];
  if (prefix > bits) return null;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((ip.value & hostMask) !== 0n) return null;
  return { family: ip.family, network: ip.value, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  const shift = BigInt(BITS[cidr.family] - cidr.prefix);
  return ip.value >> shift === cidr.network >> shift;
}

/**
 * The addresses of a CIDR that may be handed out, in order: for IPv4 the network and broadcast
 * addresses are skipped (except in /31 and /32, which have none); for IPv6 the subnet-router
 * anycast address (the first) is skipped.
 */
export function* usableAddresses(cidr: Cidr): Generator<ParsedIp> {
  const bits = BITS[cidr.family];
  const size = 1n << BigInt(bits - cidr.prefix);
  let first = cidr.network;
  let last = cidr.network + size - 1n;
  if (cidr.family === 4 && cidr.prefix <= 30) {
    first += 1n;
    last -= 1n;
  } else if (cidr.family === 6 && cidr.prefix <= 126) {
    first += 1n;
  }
  for (let value = first; value <= last; value++) yield { family: cidr.family, value };
}

export function usableCount(cidr: Cidr): bigint {
  const size = 1n << BigInt(BITS[cidr.family] - cidr.prefix);
  if (cidr.family === 4 && cidr.prefix <= 30) return size - 2n;
  if (cidr.family === 6 && cidr.prefix <= 126) return size - 1n;
  return size;
}
