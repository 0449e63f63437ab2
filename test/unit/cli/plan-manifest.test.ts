import { describe, expect, it } from 'vitest';
import { describeAction } from '../../../src/cli/apply-reporter.js';
import type { DesiredTenant } from '../../../src/cli/load-manifests.js';
import { parseManifests } from '../../../src/cli/manifest.js';
import { planManifest, type TenantPlan } from '../../../src/cli/plan-manifest.js';
import { ABSENT_TENANT, type TenantState } from '../../../src/cli/tenant-state.js';

const MANIFEST = `apiVersion: switchyard/v1
kind: Tenant
metadata: { name: t1 }
spec:
  displayName: Team One
  reservation: { vcpu: 2, memoryMb: 4096 }
  certificates:
    - { name: tls, certificateFile: tls.crt, privateKeyFile: tls.key }
  pools:
    - name: web
      healthCheck: { type: http, path: /healthz }
      members:
        - { name: w1, address: 10.0.0.1, port: 8080 }
        - { name: w2, address: 10.0.0.2, port: 8080 }
  vips:
    - name: www
      address: 192.168.1.100
      port: 443
      protocol: https
      hostnames: [WWW.T1.Example]
      certificate: tls
      persistence: cookie
      defaultPool: web
      routes:
        - { name: api, priority: 10, match: { pathPrefix: /api }, pool: web }
`;

/** A manifest as `loadManifests` returns it, with a stand-in certificate (fingerprints are compared, not parsed, here). */
function desired(text = MANIFEST, fingerprint = 'AA:BB'): DesiredTenant {
  const parsed = parseManifests('tenants/t1.yaml', text);
  expect(parsed.issues).toEqual([]);
  const m = parsed.tenants[0]!;
  return {
    ...m,
    certificates: m.certificates.map((c) => ({
      name: c.name,
      certificate: 'CERT',
      privateKey: 'KEY',
      fingerprintSha256: fingerprint,
      sans: ['www.t1.example'],
    })),
    caBundles: m.caBundles.map((b) => ({ name: b.name, certificates: 'CA', fingerprints: [fingerprint] })),
    fileHash: 'f00d',
  };
}

let seq = 0;
const meta = () => ({ revision: ++seq, createdAt: '2025-01-01T00:00:00.000Z', updatedAt: '2025-01-01T00:00:00.000Z' });

/** What the API answers once `d` has been applied: the same values, in the API's shapes. */
function applied(d: DesiredTenant): TenantState {
  return {
    tenant: {
      id: d.id,
      displayName: d.displayName,
      state: 'active',
      reservation: d.reservation,
      limit: d.limit,
      weight: d.weight ?? 100,
      labels: d.labels,
      proxyKind: null,
      approval: { pending: null, decidedBy: null, decidedAt: null, reason: null },
      ...meta(),
    },
    certificates: d.certificates.map((c) => ({
      name: c.name,
      sans: [...c.sans],
      subject: 'CN=x',
      issuer: 'CN=x',
      notBefore: '',
      notAfter: '',
      fingerprintSha256: c.fingerprintSha256,
      ...meta(),
    })),
    caBundles: d.caBundles.map((b) => ({
      name: b.name,
      certificates: b.fingerprints.map((f) => ({ subject: 'CN=ca', notAfter: '', fingerprintSha256: f })),
      notAfter: '',
      ...meta(),
    })),
    pools: d.pools.map((p) => ({
      name: p.name,
      algorithm: p.algorithm,
      healthCheck: p.healthCheck,
      tls: p.tls,
      ...meta(),
      members: p.members.map((m) => ({ ...m, pool: p.name, ...meta() })),
    })),
    vips: d.vips.map(({ routes, address, addressPool, ...v }) => ({
      ...v,
      address: address ?? '192.168.200.1',
      addressPool: addressPool ?? null,
      ...meta(),
      routes: routes.map((r) => ({ ...r, vip: v.name, ...meta() })),
    })),
  };
}

const lines = (plan: TenantPlan) => plan.actions.map((a) => describeAction(a));

describe('planManifest', () => {
  it('when the tenant does not exist, then it creates everything in dependency order, members in one PUT', () => {
    const plan = planManifest(desired(), ABSENT_TENANT, { prune: false });
    expect(lines(plan)).toEqual([
      'create tenant t1',
      'create certificate t1/tls',
      'create pool t1/web (members: +2)',
      'create vip t1/www',
      'create route t1/www/api',
    ]);
    const requests = plan.actions.flatMap((a) => a.requests.map((r) => `${r.method} ${r.path}`));
    expect(requests).toEqual([
      'POST /v1/tenants',
      'POST /v1/tenants/t1/certificates',
      'POST /v1/tenants/t1/pools',
      'PUT /v1/tenants/t1/pools/web/members',
      'POST /v1/tenants/t1/vips',
      'POST /v1/tenants/t1/vips/www/routes',
    ]);
    expect(plan.actions.slice(1).every((a) => a.needsEarlierCreate)).toBe(true);
    // The weight is not in the file: it is the server's to default, and a registrar may not set it.
    expect(plan.actions[0]!.requests[0]!.body).toEqual({
      id: 't1',
      displayName: 'Team One',
      reservation: { vcpu: 2, memoryMb: 4096 },
      limit: { vcpu: 2, memoryMb: 4096 },
      labels: {},
    });
  });

  it('gives every POST an Idempotency-Key that is stable for the same file and state, and new once the state moves', () => {
    const keys = (state: TenantState) =>
      planManifest(desired(), state, { prune: false })
        .actions.flatMap((a) => a.requests.map((r) => r.idempotencyKey))
        .filter(Boolean);
    const first = keys(ABSENT_TENANT);
    expect(first).toHaveLength(5);
    expect(new Set(first).size).toBe(5);
    for (const key of first) expect(key).toMatch(/^[A-Za-z0-9_.:-]{1,128}$/);
    expect(keys(ABSENT_TENANT)).toEqual(first);
    const partly = applied(desired());
    const withoutVip: TenantState = { ...partly, vips: [] };
    expect(keys(withoutVip)).toHaveLength(2);
    expect(keys(withoutVip).some((k) => first.includes(k))).toBe(false);
  });

  it('when the manifest has been applied, then the plan is empty', () => {
    const d = desired();
    const plan = planManifest(d, applied(d), { prune: true });
    expect(plan.actions).toEqual([]);
    expect(plan.problems).toEqual([]);
    expect(plan.unchanged).toBe(5);
  });

  it('compares what the server normalised: host names, defaults and key order do not make a change', () => {
    const d = desired();
    const state = applied(d);
    const vip = state.vips[0]!;
    const reordered: TenantState = {
      ...state,
      vips: [
        {
          ...vip,
          hostnames: ['www.t1.example'],
          timeouts: { connectMs: 5000, serverMs: 30000, clientMs: 30000 },
          routes: vip.routes.map((r) => ({ ...r, match: { pathPrefix: '/api' } })),
        },
      ],
    };
    expect(planManifest(d, reordered, { prune: false }).actions).toEqual([]);
  });

  it('when fields change, then it patches only those, with If-Match, and replaces the member set in one PUT', () => {
    const before = applied(desired());
    const changed = MANIFEST.replace('port: 443', 'port: 8443').replace(
      '{ name: w2, address: 10.0.0.2, port: 8080 }',
      '{ name: w2, address: 10.0.0.2, port: 8080, weight: 50 }\n        - { name: w3, address: 10.0.0.3, port: 8080 }',
    );
    const plan = planManifest(desired(changed), before, { prune: false });
    expect(lines(plan)).toEqual(['update pool t1/web (members: +1 ~1)', 'update vip t1/www (port)']);
    const [pool, vip] = plan.actions;
    expect(pool!.requests).toEqual([
      {
        method: 'PUT',
        path: '/v1/tenants/t1/pools/web/members',
        body: { members: desired(changed).pools[0]!.members },
      },
    ]);
    expect(vip!.requests).toEqual([
      { method: 'PATCH', path: '/v1/tenants/t1/vips/www', body: { port: 8443 }, ifMatch: before.vips[0]!.revision },
    ]);
  });

  it('rotates a certificate only when the file holds another one', () => {
    const before = applied(desired());
    expect(planManifest(desired(MANIFEST, 'AA:BB'), before, { prune: false }).actions).toEqual([]);
    const plan = planManifest(desired(MANIFEST, 'CC:DD'), before, { prune: false });
    expect(lines(plan)).toEqual(['update certificate t1/tls (rotate: new chain and key)']);
    expect(plan.actions[0]!.requests[0]).toMatchObject({
      method: 'PUT',
      path: '/v1/tenants/t1/certificates/tls',
      ifMatch: before.certificates[0]!.revision,
    });
  });

  describe('TLS members and CA bundles', () => {
    const TLS_MANIFEST = MANIFEST.replace(
      '  pools:\n',
      '  caBundles:\n    - { name: members, certificatesFile: members-ca.crt }\n  pools:\n',
    ).replace(
      '      healthCheck: { type: http, path: /healthz }',
      '      healthCheck: { type: https, path: /healthz }\n      tls: { caBundle: members, sni: { from: fixed, name: web.t1.internal } }',
    );

    it('uploads the CA bundle before the pool that trusts it, and the pool cannot be dry-run alone', () => {
      const plan = planManifest(desired(TLS_MANIFEST), ABSENT_TENANT, { prune: false });
      expect(lines(plan).slice(0, 4)).toEqual([
        'create tenant t1',
        'create certificate t1/tls',
        'create ca-bundle t1/members',
        'create pool t1/web (members: +2)',
      ]);
      expect(plan.actions[2]!.requests[0]).toMatchObject({
        method: 'POST',
        path: '/v1/tenants/t1/ca-bundles',
        body: { name: 'members', certificates: 'CA' },
      });
      expect(plan.actions[3]!.requests[0]!.body).toMatchObject({
        tls: { verify: 'required', caBundle: 'members', sni: { from: 'fixed', name: 'web.t1.internal' } },
      });
    });

    it('replaces a bundle only when its certificates differ, and prunes one the file no longer names', () => {
      const before = applied(desired(TLS_MANIFEST));
      expect(planManifest(desired(TLS_MANIFEST), before, { prune: true }).actions).toEqual([]);
      const plan = planManifest(desired(TLS_MANIFEST, 'CC:DD'), before, { prune: false });
      expect(lines(plan)).toEqual([
        'update certificate t1/tls (rotate: new chain and key)',
        'update ca-bundle t1/members (new certificates)',
      ]);
      const withoutTls = planManifest(desired(), before, { prune: true });
      expect(lines(withoutTls)).toEqual(['update pool t1/web (healthCheck, tls)', 'delete ca-bundle t1/members']);
    });
  });

  describe('objects the file no longer names', () => {
    const bigger = `${MANIFEST.replace(
      '        - { name: w2, address: 10.0.0.2, port: 8080 }',
      '        - { name: w2, address: 10.0.0.2, port: 8080 }\n        - { name: w9, address: 10.0.0.9, port: 8080 }',
    )
      .replace(
        '  vips:\n',
        '    - name: old\n  vips:\n    - { name: gone, address: 192.168.1.9, port: 80, protocol: http, defaultPool: old, routes: [{ name: r, match: { host: a.example }, pool: old }] }\n',
      )
      .replace(
        '        - { name: api, priority: 10, match: { pathPrefix: /api }, pool: web }',
        '        - { name: api, priority: 10, match: { pathPrefix: /api }, pool: web }\n        - { name: legacy, match: { pathPrefix: /v0 }, pool: web }',
      )}`;
    const before = applied(desired(bigger));

    it('with --prune, then it deletes exactly those, children first, and only within this tenant', () => {
      const plan = planManifest(desired(), before, { prune: true });
      expect(lines(plan)).toEqual([
        'update pool t1/web (members: -1)',
        'delete route t1/www/legacy',
        'delete vip t1/gone (with its 1 route(s))',
        'delete pool t1/old',
      ]);
      expect(plan.actions.flatMap((a) => a.requests).every((r) => r.path.startsWith('/v1/tenants/t1/'))).toBe(true);
      expect(plan.actions[0]!.requests[0]!.body).toEqual({ members: desired().pools[0]!.members });
    });

    it('without --prune, then nothing is deleted and members the file does not name are sent back as they are', () => {
      const plan = planManifest(desired(), before, { prune: false });
      expect(plan.actions).toEqual([]);
      expect(plan.notes).toEqual([
        'pool t1/web: 1 member(s) not in the file are kept (--prune removes them)',
        'tenant t1: 3 object(s) on the server are not in the file and are kept (--prune deletes them)',
      ]);
      const withNewMember = MANIFEST.replace(
        '{ name: w2, address: 10.0.0.2, port: 8080 }',
        '{ name: w2, address: 10.0.0.2, port: 8080 }\n        - { name: w4, address: 10.0.0.4, port: 8080 }',
      );
      const put = planManifest(desired(withNewMember), before, { prune: false }).actions[0]!;
      expect(describeAction(put)).toBe('update pool t1/web (members: +1)');
      expect((put.requests[0]!.body as { members: { name: string }[] }).members.map((m) => m.name)).toEqual([
        'w1',
        'w2',
        'w4',
        'w9',
      ]);
    });
  });

  it("when the file moves a VIP's address, then it is a conflict, not a write", () => {
    const before = applied(desired());
    const plan = planManifest(desired(MANIFEST.replace('192.168.1.100', '192.168.1.200')), before, { prune: false });
    expect(plan.problems).toEqual([
      {
        path: 'spec.vips[0].address',
        kind: 'conflict',
        message: expect.stringContaining("vip t1/www is on 192.168.1.100; a VIP's address is fixed for its life"),
      },
    ]);
  });

  it('when a reference is neither in the file nor on the server, then the field is named', () => {
    const plan = planManifest(desired(MANIFEST.replace('pool: web }', 'pool: nowhere }')), ABSENT_TENANT, {
      prune: false,
    });
    expect(plan.problems).toEqual([
      {
        path: 'spec.vips[0].routes[0].pool',
        kind: 'missing',
        message: 'pool "nowhere" is neither in this file nor on the server: add it to the file, or fix the name',
      },
    ]);
  });

  it('leaves an unmanaged weight alone and does not re-request a capacity raise that waits for approval', () => {
    const d = desired(MANIFEST.replace('vcpu: 2', 'vcpu: 3'));
    const before = applied(desired());
    const waiting: TenantState = {
      ...before,
      tenant: {
        ...before.tenant!,
        weight: 700,
        approval: {
          pending: { reservation: d.reservation, limit: d.limit, requestedBy: 'ci', requestedAt: '' },
          decidedBy: null,
          decidedAt: null,
          reason: null,
        },
      },
    };
    const plan = planManifest(d, waiting, { prune: false });
    expect(plan.actions).toEqual([]);
    expect(plan.notes).toEqual(["tenant t1: the capacity change to 3 vCPU / 4096 MB waits for an admin's approval"]);
    const raise = planManifest(d, before, { prune: false });
    expect(lines(raise)).toEqual(['update tenant t1 (reservation, limit)']);
  });
});
