import { ValidationError } from '../domain/errors.js';
import { formatIp, parseCidr, parseIp } from '../domain/ip.js';
import { safe } from './guard.js';

/**
 * Addresses as nginx needs them. nginx opens IPv6 listeners `ipv6only`, so an IPv4-mapped VIP
 * (`::ffff:192.0.2.1`) cannot bind as IPv6 (EINVAL), and its `allow` rules compare an IPv4
 * client only with IPv4 rules. HAProxy treats mapped addresses as the IPv4 ones they carry;
 * these helpers make nginx do the same.
 */
const MAPPED_PREFIX = 0xffffn << 32n;

/** The IPv4 address an IPv4-mapped IPv6 literal carries; any other address unchanged. */
export function nginxIp(field: string, ip: string): string {
  const parsed = parseIp(safe('ip', field, ip));
  if (parsed === null) return ip;
  if (parsed.family === 6 && parsed.value >> 32n === 0xffffn)
    return formatIp({ family: 4, value: parsed.value & 0xffffffffn });
  return ip;
}

/**
 * A VIP's listen address. IPv6 link-local (fe80::/10) and multicast (ff00::/8) addresses cannot
 * be bound without naming an interface, which a VIP cannot: refused here by name, instead of by
 * nginx with `bind() ... failed (22: Invalid argument)`.
 */
export function nginxListenIp(field: string, ip: string): string {
  const address = nginxIp(field, ip);
  const parsed = parseIp(address);
  if (parsed !== null && parsed.family === 6 && (parsed.value >> 118n === 0x3fan || parsed.value >> 120n === 0xffn)) {
    const message = `${address} is a link-local or multicast IPv6 address: no proxy can listen on it`;
    throw new ValidationError(`${field}: ${message}`, [{ path: field, message }]);
  }
  return address;
}

/**
 * The `allow` ranges for one allowlist entry: an IPv4-mapped IPv6 block becomes the IPv4 block
 * it covers, and an IPv6 block wider than all mapped addresses (`::/0`, `::/64` ...) also
 * admits every IPv4 client, as HAProxy's `src` would.
 */
export function nginxAllowRanges(field: string, range: string): string[] {
  const cidr = parseCidr(safe('cidr', field, range));
  if (cidr === null || cidr.family === 4) return [range];
  if (cidr.prefix >= 96 && cidr.network >> 32n === 0xffffn) {
    return [`${formatIp({ family: 4, value: cidr.network & 0xffffffffn })}/${cidr.prefix - 96}`];
  }
  const shift = BigInt(128 - cidr.prefix);
  return cidr.network >> shift === MAPPED_PREFIX >> shift ? [range, '0.0.0.0/0'] : [range];
}
