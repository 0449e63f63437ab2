import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  cidrContains,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
  usableAddresses,
  usableCount,
} from '../../../src/domain/ip.js';
import { assertProperty } from '../../support/property.js';

describe('canonicalIp', () => {
  it('keeps plain dotted quads, zeros included', () => {
    for (const ip of ['0.0.0.0', '10.0.0.1', '10.100.0.250', '255.255.255.255', '1.0.10.0'])
      expect(canonicalIp(ip)).toBe(ip);
  });

  it('refuses a leading zero in any part (octal to some tools)', () => {
    for (const ip of ['010.0.0.1', '10.01.0.1', '10.0.00.1', '10.0.0.01', '00.0.0.0'])
      expect(canonicalIp(ip)).toBeNull();
  });

  it('writes IPv6 in its one canonical form and refuses zone ids and non-addresses', () => {
    expect(canonicalIp('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalIp('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(canonicalIp('fe80::1%eth0')).toBeNull();
    expect(canonicalIp('10.0.0')).toBeNull();
    expect(canonicalIp('example.com')).toBeNull();
  });
});

describe('parseIp and formatIp', () => {
  it('reads IPv4 as its 32-bit number and IPv6 as its 128-bit number, embedded IPv4 included', () => {
    expect(parseIp('0.0.0.0')).toEqual({ family: 4, value: 0n });
    expect(parseIp('10.0.1.2')).toEqual({ family: 4, value: 0x0a000102n });
    expect(parseIp('255.255.255.255')).toEqual({ family: 4, value: 0xffffffffn });
    expect(parseIp('::')).toEqual({ family: 6, value: 0n });
    expect(parseIp('::1')).toEqual({ family: 6, value: 1n });
    expect(parseIp('2001:db8::1')).toEqual({ family: 6, value: 0x20010db8000000000000000000000001n });
    expect(parseIp('2001:DB8:0:0:1:0:0:1')).toEqual({ family: 6, value: 0x20010db8000000000001000000000001n });
    expect(parseIp('::ffff:10.0.0.1')).toEqual({ family: 6, value: 0xffff0a000001n });
    expect(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual({ family: 6, value: (1n << 128n) - 1n });
  });

  it('refuses what canonicalIp refuses', () => {
    for (const text of [
      '',
      '10.0.0',
      '10.0.0.256',
      '10.01.0.1',
      '1.2.3.4.5',
      'fe80::1%eth0',
      '[::1]',
      '2001:db8::1::2',
      'example.com',
      ' 10.0.0.1',
    ]) {
      expect(parseIp(text), text).toBeNull();
    }
  });

  it('writes IPv4 dotted and IPv6 compressed in lower case', () => {
    expect(formatIp({ family: 4, value: 0x0a000102n })).toBe('10.0.1.2');
    expect(formatIp({ family: 6, value: 0x20010db8000000000000000000000001n })).toBe('2001:db8::1');
    expect(formatIp({ family: 6, value: 0n })).toBe('::');
    expect(formatIp({ family: 6, value: 0xabcd0000000000000000000000000000n })).toBe('abcd::');
  });

  it('property: every address formats to its canonical text and parses back to itself', () => {
    const addresses = fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }).map((value) => ({ family: 4 as const, value })),
      fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map((value) => ({ family: 6 as const, value })),
    );
    assertProperty(
      fc.property(addresses, (ip) => {
        const text = formatIp(ip);
        expect(canonicalIp(text)).toBe(text);
        expect(parseIp(text)).toEqual(ip);
      }),
      2000,
    );
  });
});

describe('parseCidr and formatCidr', () => {
  it('reads a network address and its prefix, IPv4 and IPv6, /0 to a single address', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ family: 4, network: 0x0a000000n, prefix: 8 });
    expect(parseCidr('192.168.1.128/25')).toEqual({ family: 4, network: 0xc0a80180n, prefix: 25 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ family: 4, network: 0n, prefix: 0 });
    expect(parseCidr('10.0.0.1/32')).toEqual({ family: 4, network: 0x0a000001n, prefix: 32 });
    expect(parseCidr('2001:db8::/32')).toEqual({ family: 6, network: 0x20010db8n << 96n, prefix: 32 });
    expect(parseCidr('2001:DB8:0:1::/64')).toEqual({
      family: 6,
      network: 0x20010db8000000010000000000000000n,
      prefix: 64,
    });
    expect(parseCidr('::/0')).toEqual({ family: 6, network: 0n, prefix: 0 });
    expect(parseCidr('::1/128')).toEqual({ family: 6, network: 1n, prefix: 128 });
  });

  it('refuses an address with host bits set: the network address is what a pool names', () => {
    for (const text of [
      '10.0.0.1/24',
      '10.0.0.1/31',
      '192.168.1.64/25',
      '11.0.0.0/7',
      '2001:db8::1/64',
      '2001:db9::/31',
      '::1/127',
    ]) {
      expect(parseCidr(text), text).toBeNull();
    }
  });

  it('refuses a prefix longer than the family has bits, a missing or malformed prefix, and a bad address', () => {
    for (const text of [
      '10.0.0.0/33',
      '::/129',
      '10.0.0.0/1000',
      '10.0.0.0',
      '10.0.0.0/',
      '10.0.0.0/-1',
      '10.0.0.0/8.0',
      '10.0.0.0/ 8',
      '10.0.0.0/8/8',
      '10.0.0/8',
      '10.00.0.0/16',
      'fe80::%eth0/64',
      'example.com/24',
      '/24',
    ]) {
      expect(parseCidr(text), text).toBeNull();
    }
  });

  it('writes the canonical text back', () => {
    expect(formatCidr(parseCidr('10.0.0.0/8')!)).toBe('10.0.0.0/8');
    expect(formatCidr(parseCidr('2001:DB8:0:0::/48')!)).toBe('2001:db8::/48');
  });
});

describe('cidrContains', () => {
  it('holds exactly the addresses from the network address to the last of the block, of its own family', () => {
    const net = parseCidr('192.168.1.0/24')!;
    const at = (text: string) => cidrContains(net, parseIp(text)!);
    expect([at('192.168.1.0'), at('192.168.1.255'), at('192.168.1.77')]).toEqual([true, true, true]);
    expect([at('192.168.0.255'), at('192.168.2.0'), at('10.0.0.1')]).toEqual([false, false, false]);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('255.255.255.255')!)).toBe(true);
    expect(cidrContains(parseCidr('::/0')!, parseIp('10.0.0.1')!), 'IPv4 is not inside ::/0').toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('::ffff:10.0.0.1')!), 'nor IPv6 inside 0.0.0.0/0').toBe(false);
    const v6 = parseCidr('2001:db8::/126')!;
    expect(['2001:db8::', '2001:db8::3', '2001:db8::4'].map((t) => cidrContains(v6, parseIp(t)!))).toEqual([
      true,
      true,
      false,
    ]);
  });
});

describe('usableAddresses and usableCount', () => {
  const usable = (text: string) => [...usableAddresses(parseCidr(text)!)].map(formatIp);

  it('IPv4: skips the network and broadcast addresses, except in /31 and /32 which have none', () => {
    const block = usable('10.0.0.0/24');
    expect([block.length, block[0], block.at(-1)]).toEqual([254, '10.0.0.1', '10.0.0.254']);
    expect(usable('10.0.0.0/30')).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(usable('10.0.0.0/31')).toEqual(['10.0.0.0', '10.0.0.1']);
    expect(usable('10.0.0.7/32')).toEqual(['10.0.0.7']);
    expect([
      usableCount(parseCidr('10.0.0.0/24')!),
      usableCount(parseCidr('10.0.0.0/31')!),
      usableCount(parseCidr('0.0.0.0/0')!),
    ]).toEqual([254n, 2n, 2n ** 32n - 2n]);
  });

  it('IPv6: skips only the subnet-router anycast address (the first), except in /127 and /128', () => {
    expect(usable('2001:db8::/126')).toEqual(['2001:db8::1', '2001:db8::2', '2001:db8::3']);
    expect(usable('2001:db8::/127')).toEqual(['2001:db8::', '2001:db8::1']);
    expect(usable('2001:db8::5/128')).toEqual(['2001:db8::5']);
    expect(usableCount(parseCidr('2001:db8::/64')!)).toBe(2n ** 64n - 1n);
    // A block far larger than can be listed is walked lazily, from its first usable address.
    const first = usableAddresses(parseCidr('2001:db8::/32')!).next();
    expect(first.done === false && formatIp(first.value)).toBe('2001:db8::1');
  });

  it('property: the addresses listed are as many as usableCount says, in order, inside the block', () => {
    const blocks = fc
      .oneof(
        fc.record({
          family: fc.constant(4 as const),
          prefix: fc.integer({ min: 22, max: 32 }),
          bits: fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }),
        }),
        fc.record({
          family: fc.constant(6 as const),
          prefix: fc.integer({ min: 118, max: 128 }),
          bits: fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
        }),
      )
      .map(({ family, prefix, bits }) => {
        const width = family === 4 ? 32 : 128;
        const host = BigInt(width - prefix);
        return parseCidr(`${formatIp({ family, value: (bits >> host) << host })}/${prefix}`)!;
      });
    assertProperty(
      fc.property(blocks, (cidr) => {
        const listed = [...usableAddresses(cidr)];
        expect(BigInt(listed.length)).toBe(usableCount(cidr));
        for (const [i, ip] of listed.entries()) {
          expect(cidrContains(cidr, ip)).toBe(true);
          if (i > 0) expect(ip.value).toBe(listed[i - 1]!.value + 1n);
        }
        expect(formatCidr(cidr)).toBe(formatCidr(parseCidr(formatCidr(cidr))!));
      }),
      300,
    );
  });
});
