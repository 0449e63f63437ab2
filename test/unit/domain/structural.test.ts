import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { describeStructuralChanges, structuralFingerprint, structuralParts } from '../../../src/domain/structural.js';
import type { NodeSnapshot } from '../../../src/domain/snapshot.js';
import { member, seed, withMembers, withTenant } from './runtime-fixtures.js';

/** What a pending reload is for: per-part hashes of two versions, compared. */
const hashed = (s: NodeSnapshot): Record<string, string> =>
  Object.fromEntries(
    Object.entries(structuralParts(s)).map(([k, v]) => [
      k,
      createHash('sha256').update(JSON.stringify(v)).digest('hex'),
    ]),
  );

describe('structural reasons', () => {
  it('when only runtime-changeable things change, then no part changes', () => {
    let next = withMembers(seed(), 'b', 'api', (ms) => [
      ...ms.map((m) => ({ ...m, weight: 1, state: 'drain' as const })),
      member('api', { name: 'api-9', address: '10.0.2.99', port: 1 }),
    ]);
    next = withTenant(next, 'a', (t) => ({ ...t, allocation: { maxConnections: 1, requestsPerSecond: 1 } }));
    expect(describeStructuralChanges(hashed(seed()), hashed(next))).toEqual([]);
    expect(structuralFingerprint(next)).toEqual(structuralFingerprint(seed()));
  });

  it('names the pool whose health check changed, and a VIP added or removed', () => {
    const checked = withTenant(seed(), 'c', (t) => ({
      ...t,
      pools: t.pools.map((p) => ({ ...p, healthCheck: { ...p.healthCheck!, intervalMs: 9000 } })),
    }));
    expect(describeStructuralChanges(hashed(seed()), hashed(checked))).toEqual([
      'pool c/ssh changed (algorithm, health check, TLS to members (settings, CA bundle, client certificate), backup members, or the member set behind cookie persistence)',
    ]);
    const withoutVip = withTenant(seed(), 'a', (t) => ({ ...t, vips: [] }));
    expect(describeStructuralChanges(hashed(seed()), hashed(withoutVip))).toEqual([
      expect.stringMatching(/^pool a\/web changed/),
      'VIP a/web removed',
    ]);
    expect(describeStructuralChanges(hashed(withoutVip), hashed(seed()))).toEqual([
      expect.stringMatching(/^pool a\/web changed/),
      'VIP a/web added',
    ]);
  });

  it('names a member added behind cookie persistence as a change of its pool', () => {
    const next = withMembers(seed(), 'a', 'web', (ms) => [
      ...ms,
      member('web', { name: 'web-4', address: '10.0.1.14', port: 8080 }),
    ]);
    expect(describeStructuralChanges(hashed(seed()), hashed(next))).toEqual([
      expect.stringMatching(/^pool a\/web changed/),
    ]);
  });

  it('when the CA bundle a TLS pool trusts gets new certificates, then its pool needs a reload; a bundle no pool uses does not', () => {
    const other = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const rotated = withTenant(seed(), 'b', (t) => ({
      ...t,
      caBundles: t.caBundles!.map((b) => ({ ...b, pem: other })),
    }));
    expect(describeStructuralChanges(hashed(seed()), hashed(rotated))).toEqual([
      expect.stringMatching(/^pool b\/api changed/),
    ]);
    const unused = withTenant(seed(), 'b', (t) => ({
      ...t,
      caBundles: [...t.caBundles!, { name: 'spare', pem: other }],
    }));
    expect(describeStructuralChanges(hashed(seed()), hashed(unused))).toEqual([]);
  });

  it('when a pool switches its members to TLS, then that pool needs a reload', () => {
    const next = withTenant(seed(), 'a', (t) => ({
      ...t,
      pools: t.pools.map((p) => ({
        ...p,
        healthCheck: null,
        tls: { verify: 'none' as const, caBundle: null, sni: null, clientCertificate: null, alpn: [] },
      })),
    }));
    expect(describeStructuralChanges(hashed(seed()), hashed(next))).toEqual([
      expect.stringMatching(/^pool a\/web changed/),
    ]);
  });
});
