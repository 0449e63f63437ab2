import { describe, expect, it } from 'vitest';
import { createNodeSchema } from '../../../src/domain/node.js';
import {
  defaultTrackPidFile,
  freeVrid,
  planVrrpInstances,
  vrrpPriority,
  vrrpSettingsSchema,
  type VrrpRouter,
} from '../../../src/domain/vrrp.js';

const NODES = [
  { name: 'edge-2', address: '198.18.0.2' },
  { name: 'edge-1', address: '198.18.0.1' },
  { name: 'edge-3', address: '198.18.0.3' },
];
const router = (address: string, vrid: number, nodes = NODES): VrrpRouter => ({
  address,
  vrid,
  authPass: 'Abcdefg1',
  nodes,
});

describe('VRRP priorities and peers', () => {
  it('when a tenant is placed on three nodes, then the first placed is the primary and the others back it up in order', () => {
    const byNode = Object.fromEntries(
      NODES.map((n) => [n.name, planVrrpInstances(n.name, [router('198.18.0.100', 7)])[0]!]),
    );
    expect(byNode['edge-2']!.priority).toBe(250);
    expect(byNode['edge-1']!.priority).toBe(200);
    expect(byNode['edge-3']!.priority).toBe(190);
    // Every node's peers are the others, and all of them use the address's one VRID.
    expect(byNode['edge-1']!.peers).toEqual(['198.18.0.2', '198.18.0.3']);
    expect(new Set(Object.values(byNode).map((i) => i.vrid))).toEqual(new Set([7]));
  });

  it('priorities only fall with rank and never leave 1..254 (255 is an address owner, 0 means giving up)', () => {
    const all = Array.from({ length: 40 }, (_, rank) => vrrpPriority(rank));
    expect(all.every((p) => p >= 1 && p <= 254)).toBe(true);
    expect(all.every((p, i) => i === 0 || p <= all[i - 1]!)).toBe(true);
  });

  it('when no other VRRP node serves an address, then the node is its own peer and the instance says it is alone', () => {
    const [alone] = planVrrpInstances('edge-1', [
      router('198.18.0.101', 3, [{ name: 'edge-1', address: '198.18.0.1' }]),
    ]);
    expect(alone).toMatchObject({ peers: ['198.18.0.1'], alone: true, priority: 250 });
  });

  it('a node renders instances only for the addresses it serves, sorted by VRID', () => {
    const planned = planVrrpInstances('edge-3', [
      router('198.18.0.9', 9),
      router('198.18.0.8', 2, NODES.slice(0, 2)),
      router('198.18.0.1', 4),
    ]);
    expect(planned.map((i) => i.name)).toEqual(['vip_4', 'vip_9']);
  });

  it('when all 255 VRIDs are taken, then none is free; otherwise the lowest free one is used', () => {
    expect(freeVrid(new Set([1, 2, 4]))).toBe(3);
    expect(freeVrid(new Set(Array.from({ length: 255 }, (_, i) => i + 1)))).toBeNull();
  });

  it('the default track pid file follows the proxy kind', () => {
    expect(defaultTrackPidFile('haproxy', '/etc/switchyard')).toBe('/run/haproxy.pid');
    expect(defaultTrackPidFile('nginx', '/etc/sy')).toBe('/etc/sy/nginx.pid');
  });
});

describe('VRRP settings', () => {
  const ok = { interface: 'eth1', address: '198.18.0.1' };

  it('accepts an interface, an IPv4 unicast address and an optional pid file', () => {
    expect(vrrpSettingsSchema.parse(ok)).toEqual({ ...ok, trackPidFile: null });
    expect(vrrpSettingsSchema.parse({ ...ok, trackPidFile: '/run/haproxy-edge.pid' }).trackPidFile).toBe(
      '/run/haproxy-edge.pid',
    );
  });

  it.each([
    ['interface', { ...ok, interface: 'eth1 x' }],
    ['interface', { ...ok, interface: 'a-very-long-interface' }],
    ['interface', { ...ok, interface: 'eth0;reboot' }],
    ['address', { ...ok, address: '2001:db8::1' }],
    ['address', { ...ok, address: 'edge-1' }],
    ['trackPidFile', { ...ok, trackPidFile: "/run/x'; reboot; '" }],
    ['trackPidFile', { ...ok, trackPidFile: '/run/$(reboot)' }],
    ['trackPidFile', { ...ok, trackPidFile: 'run/haproxy.pid' }],
    ['trackPidFile', { ...ok, trackPidFile: '/run/../etc/shadow' }],
  ])('refuses a bad %s, naming it', (field, input) => {
    const result = createNodeSchema.safeParse({
      name: 'edge-1',
      kind: 'haproxy',
      capacity: { vcpu: 1, memoryMb: 1 },
      vrrp: input,
    });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.path.join('.'))).toEqual([`vrrp.${field}`]);
  });
});
