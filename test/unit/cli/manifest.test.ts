import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIssue, parseManifests } from '../../../src/cli/manifest.js';

const seed = (name: string) => readFileSync(new URL(`../../../examples/seed/${name}`, import.meta.url), 'utf8');

const TENANT = `apiVersion: switchyard/v1
kind: Tenant
metadata: { name: shop, labels: { team: web } }
spec:
  reservation: { vcpu: 1, memoryMb: 1024 }
  pools:
    - name: app
      healthCheck: { type: http, expectedStatus: 200 }
      members:
        - { name: a1, address: "2001:DB8:0:0::1", port: 8080 }
  vips:
    - name: www
      address: 192.168.10.1
      port: 443
      protocol: https
      hostnames: [WWW.Shop.Example]
      certificate: tls
      allowlist: [10.1.2.3]
      defaultPool: app
      routes:
        - { name: api, match: { pathPrefix: /api }, pool: app }
  certificates:
    - { name: tls, certificateFile: certs/tls.crt, privateKeyFile: certs/tls.key }
`;

function messages(file: string, text: string): string[] {
  return parseManifests(file, text).issues.map(formatIssue);
}

describe('parseManifests', () => {
  it('when the seed files are parsed, then each declares its tenant with no issue', () => {
    for (const name of ['tenant-a.yaml', 'tenant-b.yaml', 'tenant-c.yaml']) {
      const parsed = parseManifests(`examples/seed/${name}`, seed(name));
      expect(parsed.issues).toEqual([]);
      expect(parsed.tenants.map((t) => t.id)).toEqual([name.replace('.yaml', '')]);
    }
  });

  it('normalises every object as the API does: defaults filled, host names lower case, addresses canonical', () => {
    const [t] = parseManifests('tenants/shop.yaml', TENANT).tenants;
    expect(t).toMatchObject({
      id: 'shop',
      displayName: 'shop',
      limit: { vcpu: 1, memoryMb: 1024 },
      labels: { team: 'web' },
      weight: null,
    });
    expect(t!.pools[0]!.healthCheck).toMatchObject({
      path: '/',
      expectedStatus: '200',
      intervalMs: 2000,
      rise: 2,
      fall: 3,
    });
    expect(t!.pools[0]!.members[0]).toEqual({
      name: 'a1',
      address: '2001:db8::1',
      port: 8080,
      weight: 100,
      state: 'enabled',
      backup: false,
    });
    const vip = t!.vips[0]!;
    expect(vip).toMatchObject({
      hostnames: ['www.shop.example'],
      allowlist: ['10.1.2.3/32'],
      persistence: 'none',
      cookieName: 'SRVID',
    });
    expect(vip.routes[0]).toEqual({ name: 'api', priority: 100, match: { pathPrefix: '/api' }, pool: 'app' });
  });

  it('resolves certificate files against the directory of the YAML file', () => {
    const [t] = parseManifests('tenants/shop.yaml', TENANT).tenants;
    expect(t!.certificates[0]).toEqual({
      name: 'tls',
      certificateFile: resolve('tenants/certs/tls.crt'),
      privateKeyFile: resolve('tenants/certs/tls.key'),
    });
  });

  it('when a field is invalid, then the issue names the file, the document index and the field', () => {
    const text = `${TENANT}---\n${TENANT.replace('port: 443', 'port: 70000').replace('name: shop,', 'name: shop2,')}`;
    expect(messages('tenants/a.yaml', text)).toEqual([
      'tenants/a.yaml[1] spec.vips[0].port: Too big: expected number to be <=65535',
    ]);
  });

  it('reports every problem of a document, an unknown field included, not just the first', () => {
    const text = TENANT.replace('  reservation:', '  colour: blue\n  reservation:')
      .replace('port: 8080', 'port: 0')
      .replace('pathPrefix: /api', 'pathPrefix: api')
      .replace('name: tls,', 'name: TLS,');
    expect(messages('t.yaml', text)).toEqual([
      't.yaml[0] spec.colour: unknown field (expected one of displayName, reservation, limit, weight, certificates, caBundles, pools, vips)',
      't.yaml[0] spec.certificates[0].name: must be a slug: a lower-case letter, then lower-case letters, digits or "-", at most 63 characters',
      't.yaml[0] spec.pools[0].members[0].port: Too small: expected number to be >=1',
      expect.stringMatching(/^t\.yaml\[0\] spec\.vips\[0\]\.routes\[0\]\.match\.pathPrefix: must start with "\/"/),
    ]);
  });

  it('maps the tenant fields to where they live in the document', () => {
    expect(messages('t.yaml', TENANT.replace('name: shop,', 'name: Shop,'))).toEqual([
      expect.stringMatching(/^t\.yaml\[0\] metadata\.name: must be a slug/),
    ]);
    const undercut = TENANT.replace(
      'reservation: { vcpu: 1, memoryMb: 1024 }',
      'reservation: { vcpu: 2, memoryMb: 1024 }\n  limit: { vcpu: 1, memoryMb: 1024 }',
    );
    expect(messages('t.yaml', undercut)).toEqual([
      't.yaml[0] spec.limit.vcpu: limit (1) must be at least the reservation (2)',
    ]);
    expect(messages('t.yaml', TENANT.replace('team: web', 'Team: web'))).toEqual([
      expect.stringMatching(/^t\.yaml\[0\] metadata\.labels\.Team: /),
    ]);
  });

  it('refuses a __proto__ key where YAML gives one, instead of dropping it', () => {
    expect(messages('t.yaml', TENANT.replace('team: web', 'team: web, __proto__: x'))).toEqual([
      't.yaml[0] metadata.labels.__proto__: "__proto__" is not a valid key',
    ]);
    expect(messages('t.yaml', TENANT.replace('port: 8080 }', 'port: 8080, __proto__: { weight: 5 } }'))).toEqual([
      't.yaml[0] spec.pools[0].members[0].__proto__: "__proto__" is not a valid key',
    ]);
  });

  it('refuses a YAML syntax error with its line, and documents of another kind', () => {
    expect(messages('t.yaml', 'apiVersion: switchyard/v1\nkind: [Tenant\n')[0]).toMatch(
      /^t\.yaml\[0\]: YAML: .*line \d+/,
    );
    expect(messages('t.yaml', 'apiVersion: v2\nkind: Pod\nmetadata: { name: x }\n')).toEqual([
      't.yaml[0] apiVersion: Invalid input: expected "switchyard/v1"',
      't.yaml[0] kind: Invalid input: expected "Tenant"',
    ]);
    expect(messages('t.yaml', '- a\n- b\n')).toEqual([
      't.yaml[0]: a document must be a mapping with apiVersion: switchyard/v1, kind: Tenant, metadata and spec',
    ]);
  });

  it('refuses duplicate names within a tenant', () => {
    const text = TENANT.replace(
      '        - { name: a1, address: "2001:DB8:0:0::1", port: 8080 }',
      '        - { name: a1, address: 10.0.0.1, port: 1 }\n        - { name: a1, address: 10.0.0.2, port: 1 }',
    );
    expect(messages('t.yaml', text)).toEqual(['t.yaml[0] spec.pools[0].members[1].name: duplicate member name a1']);
    const twoVips = TENANT.replace(
      '  vips:\n',
      '  vips:\n    - { name: www, address: 192.168.10.2, port: 80, protocol: tcp }\n',
    );
    expect(messages('t.yaml', twoVips)).toEqual([
      't.yaml[0] spec.vips[1].name: duplicate vip name "www" (also spec.vips[0])',
    ]);
  });

  it('skips empty documents and keeps a weight only when the file gives one', () => {
    const parsed = parseManifests(
      't.yaml',
      `---\n# nothing here\n---\n${TENANT.replace('  reservation:', '  weight: 300\n  reservation:')}---\n`,
    );
    expect(parsed.issues).toEqual([]);
    expect(parsed.tenants.map((t) => [t.source.index, t.weight])).toEqual([[1, 300]]);
  });
});
