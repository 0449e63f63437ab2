import { describe, expect, it } from 'vitest';
import {
  deliveredConfigSchema,
  deliveryProblem,
  type DeliveredConfig,
} from '../../../../src/fleet/agent/delivered-config.js';

const H = 'a'.repeat(64);
const config = (files: Record<string, string>, over: Partial<DeliveredConfig> = {}): DeliveredConfig =>
  deliveredConfigSchema.parse({
    node: 'edge-1',
    kind: 'haproxy',
    revision: 3,
    contentHash: H,
    structuralHash: H,
    files,
    heldTenants: [],
    createdAt: 'now',
    ...over,
  });
const HAPROXY = 'global\n    master-worker\n    server-state-file /etc/sy/state/server-state\n';

describe('what the agent accepts from the control plane', () => {
  it('refuses file names that could leave the release directory', () => {
    for (const name of ['../x', '/etc/passwd', 'a/../../x', 'a//b', './x', 'certs/.', '']) {
      expect(
        deliveredConfigSchema.safeParse({
          node: 'n',
          kind: 'haproxy',
          revision: 1,
          contentHash: H,
          structuralHash: H,
          files: { [name]: '' },
          createdAt: 'x',
        }).success,
        name,
      ).toBe(false);
    }
  });

  it('refuses files rendered for another node, kind or configDir, saying what to change', () => {
    const expected = { node: 'edge-1', kind: 'haproxy' as const, configDir: '/etc/sy' };
    expect(deliveryProblem(config({ 'haproxy.cfg': HAPROXY }), expected)).toBeNull();
    expect(deliveryProblem(config({ 'haproxy.cfg': HAPROXY }, { node: 'edge-2' }), expected)).toMatch(
      /node edge-2, not edge-1/,
    );
    expect(deliveryProblem(config({ 'nginx.conf': 'pid /etc/sy/nginx.pid;\n' }, { kind: 'nginx' }), expected)).toMatch(
      /--kind haproxy/,
    );
    expect(deliveryProblem(config({ 'haproxy.cfg': HAPROXY }), { ...expected, configDir: '/srv/lb' })).toMatch(
      /rendered for configDir \/etc\/sy but .* --config-dir \/srv\/lb/,
    );
    expect(
      deliveryProblem(config({ 'nginx.conf': 'pid /srv/lb/nginx.pid;\n' }, { kind: 'nginx' }), {
        ...expected,
        kind: 'nginx',
      }),
    ).toMatch(/configDir \/srv\/lb/);
  });
});
