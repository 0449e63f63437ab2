import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkCaMaterial, createCa, issue } from '../../src/pki/openssl-ca.js';
import { CONTROL_PLANE_SUBJECT, nodeSubject } from '../../src/domain/runtime-tls.js';

describe('the Runtime API CA (openssl)', () => {
  it("issues a node certificate that chains to the CA, names the node's addresses and is for servers only", async () => {
    const ca = await createCa('Switchyard test CA', 10);
    checkCaMaterial(ca);
    const subject = nodeSubject({
      name: 'edge-1',
      runtimeAddress: { host: '10.0.0.5' },
      masterAddress: { host: '::1' },
    });
    const leaf = await issue(ca, subject, 3);
    const cert = new X509Certificate(leaf.certificatePem);
    const root = new X509Certificate(ca.certificatePem);
    expect(cert.verify(root.publicKey)).toBe(true);
    expect(cert.checkIssued(root)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIP('10.0.0.5')).toBe('10.0.0.5');
    expect(cert.checkIP('10.0.0.6')).toBeUndefined();
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(leaf.keyPem)))).toBe(true);
    const lifetimeDays = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(lifetimeDays).toBeGreaterThan(3);
    expect(lifetimeDays).toBeLessThan(3.1);
  });

  it('issues the control plane a client-only certificate, and two certificates never share a serial', async () => {
    const ca = await createCa('Switchyard test CA', 10);
    const [a, b] = await Promise.all([issue(ca, CONTROL_PLANE_SUBJECT, 3), issue(ca, CONTROL_PLANE_SUBJECT, 3)]);
    const certA = new X509Certificate(a.certificatePem);
    expect(certA.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(certA.serialNumber).not.toBe(new X509Certificate(b.certificatePem).serialNumber);
  });

  it('refuses a supplied CA whose key is not its own, or that is no CA', async () => {
    const one = await createCa('one', 10);
    const two = await createCa('two', 10);
    expect(() => checkCaMaterial({ certificatePem: one.certificatePem, keyPem: two.keyPem })).toThrow(
      /does not belong/,
    );
    const leaf = await issue(one, CONTROL_PLANE_SUBJECT, 1);
    expect(() => checkCaMaterial(leaf)).toThrow(/not a CA/);
    expect(() => checkCaMaterial({ certificatePem: 'nonsense', keyPem: one.keyPem })).toThrow(/not a PEM/);
  });
});
