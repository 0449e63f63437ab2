import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { createCa } from '../../src/pki/openssl-ca.js';
import { FleetPki } from '../../src/services/fleet-pki.js';
import { startTestApp, type TestApp } from '../support/app.js';

/**
 * Switchyard's Runtime API CA and the certificates it issues, against the real control plane and
 * PostgreSQL (and openssl): issued at registration, again when addresses change, renewed without a
 * reload, and a new CA rolled out without locking the control plane out of nodes that do not
 * trust it yet.
 */

let app: TestApp;
const DAY = 86_400_000;
const node = {
  name: 'edge-1',
  kind: 'haproxy',
  runtimeAddress: { host: '10.0.0.5', port: 9999 },
  masterAddress: { host: '10.0.0.5', port: 9998 },
  capacity: { vcpu: 2, memoryMb: 2048 },
  configDir: '/etc/sy-edge-1',
};

const certOf = (pem: string) => new X509Certificate(pem);
const caCerts = (bundle: string) =>
  bundle
    .split(/(?<=-----END CERTIFICATE-----\n)/)
    .filter((p) => p.includes('BEGIN'))
    .map(certOf);

async function config(
  name: string,
): Promise<{ contentHash: string; structuralHash: string; revision: number; files: Record<string, string> }> {
  return app.cp.services.configs.build(name);
}

beforeAll(async () => {
  app = await startTestApp();
  expect((await app.admin('POST', '/v1/nodes', node)).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await app?.stop();
});

describe('Runtime API certificates', () => {
  it("a registered HAProxy node gets a server certificate naming it and its listeners' address, delivered with its config", async () => {
    const built = await config('edge-1');
    const leaf = certOf(built.files['runtime-api/node.pem']!);
    const [ca] = caCerts(built.files['runtime-api/ca.pem']!);
    expect(leaf.checkIssued(ca!)).toBe(true);
    expect(leaf.subject).toBe('CN=edge-1');
    expect(leaf.subjectAltName).toBe('DNS:edge-1, IP Address:10.0.0.5');
    expect(built.files['runtime-api/node.pem']).toContain('-----BEGIN PRIVATE KEY-----');
    expect(built.files['haproxy.cfg']).toContain(
      'bind 10.0.0.5:9999 ssl crt /etc/sy-edge-1/runtime-api/node.pem ca-file /etc/sy-edge-1/runtime-api/ca.pem verify required',
    );
    expect(built.files['haproxy.cfg']).toContain('server master unix@/run/switchyard/master.sock');
    const shown = (await app.admin('GET', '/v1/nodes/edge-1')).body.runtimeCertificate;
    expect(shown.serial).toBe(leaf.serialNumber);
  });

  it("an NGINX node with a runtime channel gets a server certificate naming it and the channel's address", async () => {
    const res = await app.admin('POST', '/v1/nodes', {
      name: 'ngx-rt',
      kind: 'nginx',
      runtimeAddress: { host: '10.0.0.7', port: 9443 },
      capacity: { vcpu: 1, memoryMb: 512 },
    });
    expect(res.status).toBe(201);
    const material = (await app.cp.services.pki.nodeMaterial('ngx-rt'))!;
    const leaf = certOf(material.certificatePem);
    expect(leaf.subject).toBe('CN=ngx-rt');
    expect(leaf.subjectAltName).toBe('DNS:ngx-rt, IP Address:10.0.0.7');
    expect(leaf.checkIssued(caCerts(material.caBundlePem)[0]!)).toBe(true);
    expect(res.body.runtimeCertificate.serial).toBe(leaf.serialNumber);
    expect((await app.admin('DELETE', '/v1/nodes/ngx-rt')).status).toBe(200);
  });

  it('an NGINX node without a runtime channel, or a HAProxy node without listeners, gets none', async () => {
    expect(
      (await app.admin('POST', '/v1/nodes', { name: 'ngx-1', kind: 'nginx', capacity: { vcpu: 1, memoryMb: 512 } }))
        .body.runtimeCertificate,
    ).toBeNull();
    expect(
      (await app.admin('POST', '/v1/nodes', { name: 'bare-1', kind: 'haproxy', capacity: { vcpu: 1, memoryMb: 512 } }))
        .body.runtimeCertificate,
    ).toBeNull();
    const built = await config('bare-1');
    expect(Object.keys(built.files).filter((f) => f.startsWith('runtime-api/'))).toEqual([]);
    expect(built.files['haproxy.cfg']).not.toContain('listen sy_');
  });

  it('a node whose Runtime API moves is issued a certificate naming the new address', async () => {
    const before = (await app.admin('GET', '/v1/nodes/edge-1')).body;
    const res = await app.admin('PATCH', '/v1/nodes/edge-1', {
      runtimeAddress: { host: '10.0.0.6', port: 9999 },
      masterAddress: null,
    });
    expect(res.status).toBe(200);
    expect(res.body.runtimeCertificate.serial).not.toBe(before.runtimeCertificate.serial);
    const built = await config('edge-1');
    expect(certOf(built.files['runtime-api/node.pem']!).subjectAltName).toBe('DNS:edge-1, IP Address:10.0.0.6');
    expect(built.files['haproxy.cfg']).not.toContain('listen sy_master_cli');
  });

  it('refuses a socketDir that is not a safe absolute path, naming the field, and changes nothing', async () => {
    const res = await app.admin('PATCH', '/v1/nodes/edge-1', { socketDir: '/run/x y' });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.error)).toContain('socketDir');
    expect((await app.admin('GET', '/v1/nodes/edge-1')).body.socketDir).toBe('/run/switchyard');
  });

  it("nothing is due right after issuance; a renewal changes the node's files but not their structure (no reload)", async () => {
    expect((await app.cp.services.pki.renewDue()).renewed).toEqual([]);
    const before = await config('edge-1');
    const outcome = await app.cp.services.pki.renewDue(new Date(Date.now() + 21 * DAY));
    expect(outcome.renewed.map((r) => r.subject).sort()).toEqual(['control-plane', 'node:edge-1']);
    const after = await config('edge-1');
    expect(after.revision).toBeGreaterThan(before.revision);
    expect(after.contentHash).not.toBe(before.contentHash);
    expect(after.structuralHash).toBe(before.structuralHash);
    expect(after.files['runtime-api/ca.pem']).toBe(before.files['runtime-api/ca.pem']);
    const audit = await app.database.handle.db
      .selectFrom('audit_events')
      .select(['action', 'actor', 'resource_id'])
      .where('resource_type', '=', 'node-certificate')
      .execute();
    expect(audit).toEqual([{ action: 'update', actor: 'runtime-pki', resource_id: 'edge-1' }]);
  });

  it('a supplied CA issues from then on; nodes trust both CAs (a reload), and the control plane switches only once every node runs that config', async () => {
    const supplied = await createCa('Operator CA', 365);
    const db = app.database.handle.db;
    const secretKey = Buffer.from(app.secretKey, 'base64');
    const pki = new FleetPki(db, secretKey, {
      certificateDays: 30,
      caDays: 3650,
      supplied,
      logger: createLogger('silent'),
    });
    const before = await config('edge-1');
    const clientBefore = (await pki.clientCredentials())!;
    await pki.ensureCa();
    await pki.ensureCa(); // stored once
    expect(
      Number(
        (
          await db
            .selectFrom('fleet_cas')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      ),
    ).toBe(2);

    const outcome = await pki.renewDue();
    expect(outcome.renewed).toEqual([{ subject: 'node:edge-1', reason: 'issued by a CA that no longer issues' }]);
    const after = await config('edge-1');
    expect(after.structuralHash).not.toBe(before.structuralHash);
    const trusted = caCerts(after.files['runtime-api/ca.pem']!);
    expect(trusted.map((c) => c.subject)).toEqual(['CN=Operator CA', 'CN=Switchyard Runtime API CA']);
    expect(certOf(after.files['runtime-api/node.pem']!).checkIssued(trusted[0]!)).toBe(true);
    // The node has not applied it yet: the old client certificate (old CA) stays.
    expect((await pki.clientCredentials())!.serial).toBe(clientBefore.serial);

    // The node's agent applies the new config; the bare HAProxy node (no listeners) does not count.
    const agent = await app.token('agent', { node: 'edge-1' });
    const report = await app.as(agent)('POST', '/v1/nodes/edge-1/status', {
      event: 'applied',
      contentHash: after.contentHash,
      revision: after.revision,
      reloaded: true,
    });
    expect(report.status).toBe(200);
    await pki.renewDue();
    const client = (await pki.clientCredentials())!;
    expect(client.serial).not.toBe(clientBefore.serial);
    expect(certOf(client.certificatePem).checkIssued(trusted[0]!)).toBe(true);
    expect(client.caBundlePem).toBe(after.files['runtime-api/ca.pem']);
  });
});
