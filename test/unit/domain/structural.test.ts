import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MemberSpec } from '../../../src/domain/member.js';
import type { NodeKind } from '../../../src/domain/node.js';
import type { NodeSnapshot, PoolSnapshot } from '../../../src/domain/snapshot.js';
import {
  describeStructuralChanges,
  structuralFingerprint,
  structuralParts,
  tenantStructure,
} from '../../../src/domain/structural.js';
import { renderNginx } from '../../../src/render/nginx.js';
import { seedMemberCertificate, seedRuntimeTls, seedSnapshot } from '../../fixtures/seed-snapshot.js';
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

describe('the structure of an NGINX node with the Lua runtime', () => {
  /** The seed node as an NGINX node with a runtime channel (the structure reads only kind and settings). */
  const nginxSeed = (): NodeSnapshot => {
    const s = seedSnapshot('nginx', '/etc/nginx/switchyard');
    return {
      ...s,
      node: { ...s.node, runtimeAddress: { host: '10.0.0.1', port: 9443 }, runtimeTls: seedRuntimeTls() },
    };
  };
  const reasons = (before: NodeSnapshot, after: NodeSnapshot) =>
    describeStructuralChanges(hashed(before), hashed(after), 'nginx');
  const structureOf = (s: NodeSnapshot, tenant: string, kind: NodeKind = 'nginx') =>
    tenantStructure(s.tenants.find((t) => t.id === tenant)!, kind);
  const httpPool = (s: NodeSnapshot, change: (ms: readonly MemberSpec[]) => MemberSpec[]) =>
    withMembers(s, 'a', 'web', change);
  const withPool = (s: NodeSnapshot, tenant: string, pool: string, change: (p: PoolSnapshot) => PoolSnapshot) =>
    withTenant(s, tenant, (t) => ({ ...t, pools: t.pools.map((p) => (p.name === pool ? change(p) : p)) }));

  /** What the Lua balancer reads from the runtime state: none of it is structural on NGINX. */
  const RUNTIME: Record<string, (s: NodeSnapshot) => NodeSnapshot> = {
    "an HTTP pool's member weight": (s) => httpPool(s, (ms) => ms.map((m, i) => (i === 0 ? { ...m, weight: 7 } : m))),
    "an HTTP pool's member set (one added)": (s) =>
      httpPool(s, (ms) => [...ms, member('web', { name: 'web-9', address: '10.0.1.99', port: 1 })]),
    "an HTTP pool's member set (one removed)": (s) => httpPool(s, (ms) => ms.slice(1)),
    "an HTTP pool's backup flag": (s) => httpPool(s, (ms) => ms.map((m, i) => (i === 0 ? { ...m, backup: true } : m))),
    "an HTTP pool's member states (drain, disabled)": (s) =>
      httpPool(s, (ms) => ms.map((m, i) => ({ ...m, state: i === 0 ? ('drain' as const) : ('disabled' as const) }))),
    "an HTTP pool's member address and port": (s) =>
      httpPool(s, (ms) => ms.map((m) => ({ ...m, address: '10.9.9.9', port: 81 }))),
    "an HTTP pool's member set (all removed)": (s) => httpPool(s, () => []),
    "an HTTP pool's algorithm": (s) => withPool(s, 'a', 'web', (p) => ({ ...p, algorithm: 'leastconn' })),
    "an HTTP pool's health check": (s) =>
      withPool(s, 'b', 'api', (p) => ({ ...p, healthCheck: { ...p.healthCheck!, intervalMs: 9000, rise: 5 } })),
    "an HTTP tenant's caps": (s) =>
      withTenant(s, 'a', (t) => ({ ...t, allocation: { ...t.allocation, maxConnections: 3, requestsPerSecond: 2 } })),
  };

  it.each(Object.keys(RUNTIME))('when %s changes, then no reload is needed', (change) => {
    const before = nginxSeed();
    const after = RUNTIME[change]!(before);
    for (const t of ['a', 'b', 'c']) expect(structureOf(after, t), t).toEqual(structureOf(before, t));
    expect(reasons(before, after)).toEqual([]);
    // Sound only because nginx.conf does not hold it either: the running config stays right.
    expect(renderNginx(after)['nginx.conf']).toBe(renderNginx(before)['nginx.conf']);
  });

  it('when a pool gets its first member, then nginx.conf and the structure stay as they were', () => {
    const empty = httpPool(nginxSeed(), () => []);
    const first = httpPool(empty, () => [member('web', { name: 'web-1', address: '10.0.1.11', port: 8080 })]);
    expect(structureOf(first, 'a')).toEqual(structureOf(empty, 'a'));
    expect(renderNginx(first)['nginx.conf']).toBe(renderNginx(empty)['nginx.conf']);
  });

  it('keeps a backup flip structural on HAProxy, where a server cannot switch sides at runtime', () => {
    const flipped = RUNTIME["an HTTP pool's backup flag"]!(nginxSeed());
    expect(structureOf(flipped, 'a', 'haproxy')).not.toEqual(structureOf(nginxSeed(), 'a', 'haproxy'));
  });

  it.each([
    ['a member weight', (ms: readonly MemberSpec[]) => ms.map((m, i) => (i === 0 ? { ...m, weight: 7 } : m))],
    [
      'a member added',
      (ms: readonly MemberSpec[]) => [...ms, member('ssh', { name: 'ssh-9', address: '10.0.3.99', port: 22 })],
    ],
    ['a member drained', (ms: readonly MemberSpec[]) => ms.map((m) => ({ ...m, state: 'drain' as const }))],
  ])('when %s of a TCP pool changes, then its pool needs a reload (the stream module has no Lua)', (_, change) => {
    const before = nginxSeed();
    const after = withMembers(before, 'c', 'ssh', change);
    expect(structureOf(after, 'c')).not.toEqual(structureOf(before, 'c'));
    expect(reasons(before, after)).toEqual([
      expect.stringMatching(/^pool c\/ssh changed \(.*anything of a pool behind a TCP VIP/),
    ]);
    expect(renderNginx(after)['nginx.conf']).not.toBe(renderNginx(before)['nginx.conf']);
  });

  it("when a TCP tenant's connection cap changes, then it needs a reload; an HTTP-only tenant's does not", () => {
    const before = nginxSeed();
    const capped = (id: string) =>
      withTenant(before, id, (t) => ({ ...t, allocation: { ...t.allocation, maxConnections: 5 } }));
    expect(reasons(before, capped('c'))).toEqual([
      'connection cap of tenant c changed (the connection cap of TCP VIPs, which the stream module reads at start)',
    ]);
    expect(reasons(before, capped('a'))).toEqual([]);
  });

  it("when a certificate's contents change, then NGINX reloads (it reads them at start) and HAProxy does not", () => {
    const before = nginxSeed();
    const renewed = withTenant(before, 'b', (t) => ({
      ...t,
      certificates: t.certificates.map((c) => ({ ...c, chainPem: seedMemberCertificate().cert })),
    }));
    expect(structureOf(renewed, 'b')).not.toEqual(structureOf(before, 'b'));
    expect(reasons(before, renewed)).toEqual([
      'certificates of tenant b changed (which certificates exist, their names or contents (NGINX reads them at start))',
    ]);
    expect(structureOf(renewed, 'b', 'haproxy')).toEqual(structureOf(before, 'b', 'haproxy'));
  });
});
