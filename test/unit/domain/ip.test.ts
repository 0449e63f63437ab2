import { describe, expect, it } from 'vitest';
import { canonicalIp } from '../../../src/domain/ip.js';

describe('canonicalIp', () => {
  it('keeps plain dotted quads, zeros included', () => {
    for (const ip of ['0.0.0.0', '10.0.0.1', '10.100.0.250', '255.255.255.255', '1.0.10.0']) expect(canonicalIp(ip)).toBe(ip);
  });

  it('refuses a leading zero in any part (octal to some tools)', () => {
    for (const ip of ['010.0.0.1', '10.01.0.1', '10.0.00.1', '10.0.0.01', '00.0.0.0']) expect(canonicalIp(ip)).toBeNull();
  });

  it('writes IPv6 in its one canonical form and refuses zone ids and non-addresses', () => {
    expect(canonicalIp('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalIp('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(canonicalIp('fe80::1%eth0')).toBeNull();
    expect(canonicalIp('10.0.0')).toBeNull();
    expect(canonicalIp('example.com')).toBeNull();
  });
});
