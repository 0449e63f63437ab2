import { describe, expect, it } from 'vitest';
import { completePush, entryHash, type NginxUpstream } from '../../../src/domain/nginx-runtime.js';

describe('completePush', () => {
  const web: NginxUpstream = {
    tenant: 'acme',
    pool: 'web',
    algorithm: 'roundrobin',
    cookie: null,
    healthCheck: null,
    peers: [{ name: 'web-1', address: '10.0.0.1', port: 80, weight: 1, admin: 'ready', backup: false, cookie: null }],
  };

  it('carries the state revision, which the node reports as fileRevision and removes unnamed entries up to', () => {
    const push = completePush({ revision: 42, upstreams: {}, caps: {} });
    expect(push).toEqual({ complete: true, revision: 42, upstreams: {}, caps: {} });
  });

  it('versions every entry at the state revision with the hash of its value', () => {
    const caps = { maxConnections: 10, requestsPerSecond: 5 };
    const push = completePush({ revision: 7, upstreams: { t_acme_web: web }, caps: { acme: caps } });
    expect(push.upstreams).toEqual({ t_acme_web: { revision: 7, hash: entryHash(web), value: web } });
    expect(push.caps).toEqual({ acme: { revision: 7, hash: entryHash(caps), value: caps } });
  });
});
