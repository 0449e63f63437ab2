import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { planVrrpInstances } from '../../../src/domain/vrrp.js';
import { UnsafeValueError } from '../../../src/render/guard.js';
import { renderKeepalived } from '../../../src/render/keepalived.js';
import type { KeepalivedInput } from '../../../src/render/keepalived-view.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/render/keepalived/edge-1.conf', import.meta.url));

const input: KeepalivedInput = {
  node: 'edge-1',
  interface: 'eth1',
  sourceAddress: '198.18.0.1',
  trackPidFile: '/run/haproxy.pid',
  instances: planVrrpInstances('edge-1', [
    {
      address: '198.18.0.100',
      vrid: 1,
      authPass: 'Secret01',
      nodes: [
        { name: 'edge-1', address: '198.18.0.1' },
        { name: 'edge-2', address: '198.18.0.2' },
      ],
    },
    {
      address: '198.18.0.101',
      vrid: 2,
      authPass: 'Secret02',
      nodes: [
        { name: 'edge-2', address: '198.18.0.2' },
        { name: 'edge-1', address: '198.18.0.1' },
      ],
    },
    { address: '198.18.0.102', vrid: 3, authPass: 'Secret03', nodes: [{ name: 'edge-1', address: '198.18.0.1' }] },
  ]),
  notCovered: [{ address: '2001:db8::10', reason: 'IPv6: VRRP version 2 carries IPv4 only' }],
};

describe('keepalived.conf', () => {
  it('renders one BACKUP nopreempt instance per VIP address, unicast to its peers, with authentication and the proxy track script', () => {
    expect(renderKeepalived(input)).toBe(readFileSync(FIXTURE, 'utf8'));
  });

  it.each([
    ['the interface', { ...input, interface: 'eth1 dev lo' }],
    ['the unicast address', { ...input, sourceAddress: '198.18.0.1\n}' }],
    ['the pid file in the shell command', { ...input, trackPidFile: "/run/x' ; reboot ; '" }],
    ['a peer', { ...input, instances: [{ ...input.instances[0]!, peers: ['198.18.0.2 }'] }] }],
    ['an auth secret', { ...input, instances: [{ ...input.instances[0]!, authPass: 'sec ret"' }] }],
  ])('refuses %s that could leave its keyword', (_what, hostile) => {
    expect(() => renderKeepalived(hostile)).toThrow(UnsafeValueError);
  });
});
