import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONTROL_PLANE_SUBJECT, nodeSubject, renewalReason } from '../../../src/domain/runtime-tls.js';

/** The committed test certificate of edge-1: DNS:edge-1, IP:10.0.0.1. */
const PEM = readFileSync(new URL('../../fixtures/certs/runtime-edge-1.crt', import.meta.url), 'utf8');
const DAY = 86_400_000;
const issued = (notBefore: number, days: number, caId = 1) => ({
  certificatePem: PEM,
  caId,
  notBefore: new Date(notBefore),
  notAfter: new Date(notBefore + days * DAY),
});
const edge1 = nodeSubject({
  name: 'edge-1',
  runtimeAddress: { host: '10.0.0.1' },
  masterAddress: { host: '10.0.0.1' },
});

describe('which Runtime API certificates are issued again', () => {
  it('names a node and each distinct address of its listeners once', () => {
    expect(edge1).toEqual({ commonName: 'edge-1', ips: ['10.0.0.1'], dns: ['edge-1'], usage: 'server' });
    expect(
      nodeSubject({ name: 'n', runtimeAddress: { host: '10.0.0.9' }, masterAddress: { host: '::1' } }).ips,
    ).toEqual(['10.0.0.9', '::1']);
    expect(nodeSubject({ name: 'n', runtimeAddress: null, masterAddress: null }).ips).toEqual([]);
  });

  it('a missing certificate is due at once', () => {
    expect(renewalReason(null, edge1, 1, new Date())).toBe('no certificate yet');
  });

  it('a 30-day certificate is good for its first 20 days and due after', () => {
    const start = Date.UTC(2026, 0, 1);
    expect(renewalReason(issued(start, 30), edge1, 1, new Date(start + 19.9 * DAY))).toBeNull();
    expect(renewalReason(issued(start, 30), edge1, 1, new Date(start + 20.1 * DAY))).toMatch(
      /^expires 2026-01-31T00:00:00.000Z/,
    );
  });

  it('a certificate from a CA that no longer issues, or naming other addresses, is due at once', () => {
    const start = Date.now();
    expect(renewalReason(issued(start, 30, 1), edge1, 2, new Date(start))).toBe('issued by a CA that no longer issues');
    const moved = nodeSubject({ name: 'edge-1', runtimeAddress: { host: '10.0.0.2' }, masterAddress: null });
    expect(renewalReason(issued(start, 30), moved, 1, new Date(start))).toBe(
      "its names differ from the node's addresses",
    );
    expect(renewalReason(issued(start, 30), CONTROL_PLANE_SUBJECT, 1, new Date(start))).toBe(
      "its names differ from the node's addresses",
    );
  });
});
