import { describe, expect, it } from 'vitest';
import { checkVerdict, nginxMemberHealth } from '../../../src/domain/nginx-member-health.js';
import type { NginxHealthCheck, NginxRuntimeState, NginxStats } from '../../../src/domain/nginx-runtime.js';

/** NGINX peers' health, as its runtime channel reports it, in the rows HAProxy's check results fill. */

const HTTP_CHECK: NginxHealthCheck = {
  type: 'http',
  path: '/healthz',
  host: null,
  expectedStatus: [
    [200, 299],
    [404, 404],
  ],
  port: null,
  intervalMs: 1000,
  timeoutMs: 500,
  rise: 2,
  fall: 3,
};

const peer = (name: string, admin: 'ready' | 'drain' | 'maint' = 'ready') => ({
  name,
  address: '10.0.0.1',
  port: 80,
  weight: 1,
  admin,
  backup: false,
  cookie: null,
});

const desired: NginxRuntimeState = {
  revision: 7,
  upstreams: {
    t_a_web: {
      tenant: 'a',
      pool: 'web',
      algorithm: 'roundrobin',
      cookie: null,
      healthCheck: HTTP_CHECK,
      peers: [peer('m1'), peer('m2'), peer('m3', 'drain'), peer('m4', 'maint'), peer('m5')],
    },
    t_b_api: { tenant: 'b', pool: 'api', algorithm: 'leastconn', cookie: null, healthCheck: null, peers: [peer('x1')] },
  },
  caps: {},
};

const counters = {
  requests: 0,
  responses2xx: 0,
  responses3xx: 0,
  responses4xx: 0,
  responses5xx: 0,
  denied: 0,
  refused: 0,
  bytesIn: 0,
  bytesOut: 0,
  latencyMsSum: 0,
  active: 0,
};

function stats(peers: Record<string, [NginxStats['peers'][string]['health'], string | null]>): NginxStats {
  return {
    now: 0,
    vips: {},
    upstreams: {},
    tenants: {},
    peers: Object.fromEntries(
      Object.entries(peers).map(([key, [health, lastCheck]]) => {
        const [upstream = '', name = ''] = key.split('/');
        return [key, { ...counters, upstream, peer: name, health, lastCheck }];
      }),
    ),
  };
}

describe("an NGINX node's member health", () => {
  it('maps each reported peer to its tenant, pool and member; maintenance and drain win over the checks', () => {
    const rows = nginxMemberHealth(
      desired,
      stats({
        't_a_web/m1': ['up', 'HTTP 200'],
        't_a_web/m2': ['down', 'connection refused'],
        't_a_web/m3': ['up', 'HTTP 200'],
        't_a_web/m4': ['down', 'timeout'],
        't_b_api/x1': ['unchecked', null],
        't_gone/m1': ['down', 'timeout'],
      }),
    );
    expect(rows).toEqual([
      {
        tenant: 'a',
        pool: 'web',
        member: 'm1',
        backend: 't_a_web',
        status: 'UP',
        checkStatus: 'L7OK',
        checkDescription: 'HTTP 200',
      },
      {
        tenant: 'a',
        pool: 'web',
        member: 'm2',
        backend: 't_a_web',
        status: 'DOWN',
        checkStatus: 'L4CON',
        checkDescription: 'connection refused',
      },
      {
        tenant: 'a',
        pool: 'web',
        member: 'm3',
        backend: 't_a_web',
        status: 'DRAIN',
        checkStatus: 'L7OK',
        checkDescription: 'HTTP 200',
      },
      {
        tenant: 'a',
        pool: 'web',
        member: 'm4',
        backend: 't_a_web',
        status: 'MAINT',
        checkStatus: 'L7TOUT',
        checkDescription: 'timeout',
      },
      // No check: up, with no verdict, as HAProxy reports a server without checks.
      {
        tenant: 'b',
        pool: 'api',
        member: 'x1',
        backend: 't_b_api',
        status: 'UP',
        checkStatus: null,
        checkDescription: null,
      },
    ]);
  });

  it('leaves out a peer the node does not report yet (pushed, not yet seen by the stats)', () => {
    const rows = nginxMemberHealth(desired, stats({ 't_a_web/m1': ['up', 'HTTP 200'] }));
    expect(rows.map((r) => r.member)).toEqual(['m1']);
  });

  it("words the last check as HAProxy's verdicts, judged by the check's own expected statuses", () => {
    expect(checkVerdict(HTTP_CHECK, null)).toBe('INI');
    expect(checkVerdict(HTTP_CHECK, 'HTTP 204')).toBe('L7OK');
    expect(checkVerdict(HTTP_CHECK, 'HTTP 404')).toBe('L7OK');
    expect(checkVerdict(HTTP_CHECK, 'HTTP 503')).toBe('L7STS');
    expect(checkVerdict(HTTP_CHECK, 'timeout')).toBe('L7TOUT');
    expect(checkVerdict({ ...HTTP_CHECK, type: 'https' }, 'ssl handshake failed')).toBe('L6RSP');
    expect(checkVerdict({ ...HTTP_CHECK, type: 'tcp' }, 'timeout')).toBe('L4TOUT');
    expect(checkVerdict({ ...HTTP_CHECK, type: 'tcp' }, 'connected')).toBe('L4OK');
    expect(checkVerdict({ ...HTTP_CHECK, type: 'tcp' }, 'connection refused')).toBe('L4CON');
  });
});
