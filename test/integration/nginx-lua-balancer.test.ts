import { existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  completePush,
  entryHash,
  type NginxPeer,
  type NginxUpstream,
  type StatePush,
  versioned,
} from '../../src/domain/nginx-runtime.js';
import { channelRequest, LUA_DIR } from '../support/nginx-lua-harness.js';
import { type Closable, freePort, httpMember, listen, request } from './haproxy-render-support.js';
import {
  type ChannelPki,
  channelPki,
  expectShares,
  HOST,
  LuaNode,
  memberOf,
  peerOf,
  upstreamOf,
} from './nginx-lua-support.js';

/**
 * The Switchyard Lua module on real nginx (Debian's Lua module), on loopback: real members (small
 * node servers), real traffic, and the runtime channel over mTLS with certificates from a real
 * test PKI. Every change goes through POST /switchyard/v1/state, as the control plane sends it,
 * and takes effect without a reload. Only 127.0.0.0/8 is used; every loop is bounded; only the
 * processes started here are stopped.
 */

const TENANT = 'acme';
const LOCATIONS = {
  '/rr': 't_acme_rr',
  '/lc': 't_acme_lc',
  '/src': 't_acme_src',
  '/ck': 't_acme_ck',
  '/ops': 't_acme_ops',
  '/none': 't_acme_none',
} as const;

let certs: ChannelPki;
let node: LuaNode;
/** A channel server written without `ssl_verify_client on`: what admin.lua refuses on its own. */
let looseChannelPort: number;
/** A server whose location proxies to `http://$pool`, to an upstream whose block names itself. */
let namedPort: number;
const members = new Map<string, Closable & { port: number }>();
const holders = new Map<string, HoldingMember>();
let revision = 1;

function peer(name: string, overrides: Partial<NginxPeer> = {}): NginxPeer {
  const port = members.get(name)?.port ?? holders.get(name)?.port;
  if (port === undefined) throw new Error(`no member ${name}`);
  return peerOf(name, port, overrides);
}

function upstream(
  pool: string,
  algorithm: NginxUpstream['algorithm'],
  peers: NginxPeer[],
  cookie: string | null = null,
): NginxUpstream {
  return upstreamOf(TENANT, pool, algorithm, peers, cookie);
}

function initialState() {
  return {
    revision: 1,
    caps: { [TENANT]: { maxConnections: 100, requestsPerSecond: 1000 } },
    upstreams: {
      t_acme_rr: upstream('rr', 'roundrobin', [peer('a'), peer('b', { weight: 3 })]),
      t_acme_lc: upstream('lc', 'leastconn', [peer('h1'), peer('h2')]),
      t_acme_src: upstream('src', 'source', [peer('a'), peer('b', { weight: 3 })]),
      t_acme_ck: upstream('ck', 'roundrobin', [peer('a'), peer('b')], 'SRV'),
      t_acme_ops: upstream('ops', 'roundrobin', [peer('a'), peer('b')]),
      t_acme_named: upstream('named', 'roundrobin', [peer('c'), peer('d')]),
    },
  };
}

const post = (body: unknown, tls = certs.controlPlane) => node.post(body, tls);
const held = () => node.held();
const get = (path: string, options: { headers?: Record<string, string>; localAddress?: string } = {}) =>
  node.get(path, options);
const tally = (path: string, n: number) => node.tally(path, n);

/** Pushes one upstream at the next revision; the node must apply it. */
async function set(name: string, value: NginxUpstream): Promise<void> {
  const answer = await post({ complete: false, upstreams: { [name]: versioned(value, ++revision) }, caps: {} });
  expect(answer.status, answer.text).toBe(200);
  expect(answer.body).toEqual({ applied: 1, stale: [], failed: [] });
}

/** A member that holds requests whose path holds `hold` until released, and answers others at once. */
interface HoldingMember extends Closable {
  readonly port: number;
  held(): number;
  releaseAll(): void;
}

async function holdingMember(name: string): Promise<HoldingMember> {
  const waiting: http.ServerResponse[] = [];
  const answer = (res: http.ServerResponse) => res.writeHead(200, { 'x-member': name }).end(name);
  const server = http.createServer((req, res) => {
    if (req.url?.includes('hold')) waiting.push(res);
    else answer(res);
  });
  const port = await listen(server, HOST);
  return {
    port,
    held: () => waiting.length,
    releaseAll: () => {
      for (const res of waiting.splice(0)) answer(res);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of waiting.splice(0)) answer(res);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  certs = await channelPki();
  for (const name of ['a', 'b', 'c', 'd']) members.set(name, await httpMember(name, HOST));
  for (const name of ['h1', 'h2']) holders.set(name, await holdingMember(name));
  looseChannelPort = await freePort(HOST);
  const loose = [
    'server {',
    `  listen ${HOST}:${looseChannelPort} ssl;`,
    `  ssl_certificate ${certs.node.certPath}; ssl_certificate_key ${certs.node.keyPath};`,
    `  ssl_client_certificate ${certs.ca.certPath}; ssl_verify_client optional_no_ca;`,
    '  location /switchyard/v1/ { content_by_lua_block { require("switchyard.admin").handle() } }',
    '}',
  ].join('\n');
  namedPort = await freePort(HOST);
  const named = [
    'upstream t_acme_named { server 0.0.0.1;',
    '  balancer_by_lua_block { require("switchyard.balancer").balance("t_acme_named") } keepalive 16; }',
    `server { listen ${HOST}:${namedPort};`,
    '  header_filter_by_lua_block { require("switchyard.balancer").header_filter() }',
    '  location / { set $pool t_acme_named; proxy_pass http://$pool; } }',
  ].join('\n');
  node = await LuaNode.start(certs, {
    locations: LOCATIONS,
    extraHttp: `${loose}\n${named}`,
    stateFile: completePush(initialState()),
    init: { maxBodyBytes: 1_000_000 },
  });
});

afterAll(async () => {
  await node?.nginx.remove();
  for (const m of [...members.values(), ...holders.values()]) await m.close();
  await certs?.pki.dispose();
});

describe('the runtime state file', () => {
  it('is loaded at start: its upstreams answer before any push, and GET /state reports them at its revision', async () => {
    const state = initialState();
    expect(memberOf(await get('/ops'))).toMatch(/^[ab]$/);
    const answer = await held();
    expect(answer.fileRevision).toBe(1);
    expect(answer.upstreams).toEqual(
      Object.fromEntries(
        Object.entries(state.upstreams).map(([name, u]) => [name, { revision: 1, hash: entryHash(u) }]),
      ),
    );
    expect(answer.caps).toEqual({ [TENANT]: { revision: 1, hash: entryHash(state.caps[TENANT]) } });
  });
});

describe('balancing', () => {
  it('roundrobin with weights 1:3 sends 25% and 75% of 400 requests (within 3 points)', async () => {
    const counts = await tally('/rr', 400);
    expect(Object.keys(counts).sort()).toEqual(['a', 'b']);
    expect(Math.abs(counts.a! / 400 - 0.25)).toBeLessThanOrEqual(0.03);
  });

  it('leastconn sends new requests to the idle peer while the other holds one, whichever worker takes them', async () => {
    const [h1, h2] = [holders.get('h1')!, holders.get('h2')!];
    // The hold must outlast the tally: a client timeout would end it in nginx (its count given
    // back) while the member still holds the socket, and the last quick requests would go there.
    let settled = false;
    const hold = node.get('/lc/hold', { timeoutMs: 60_000 }).finally(() => {
      settled = true;
    });
    hold.catch(() => {}); // awaited below; a failure before then must not surface as unhandled
    // The held request lands on one of the two; until it does, the other answers at once.
    const busy = await vi.waitFor(
      () => {
        if (h1.held() + h2.held() !== 1) throw new Error('the held request has not reached a member yet');
        return h1.held() === 1 ? h1 : h2;
      },
      { timeout: 5000, interval: 10 },
    );
    const idle = busy === h1 ? 'h2' : 'h1';
    const quick = await tally('/lc/quick', 30);
    expect(settled, 'the held request was still in flight through the tally').toBe(false);
    expect(quick).toEqual({ [idle]: 30 });
    busy.releaseAll();
    expect((await hold).status).toBe(200);
    // With nothing in flight, both take requests again.
    const after = await tally('/lc/quick', 30);
    expect(after.h1).toBeGreaterThanOrEqual(10);
    expect(after.h2).toBeGreaterThanOrEqual(10);
  });

  it('source hashing keeps each client address on one peer and spreads 40 addresses 1:3 (10 of 40, within 4)', async () => {
    const byAddress = new Map<string, string>();
    for (let i = 1; i <= 40; i++) {
      const localAddress = `127.0.1.${i}`;
      const seen = new Set<string>();
      for (let k = 0; k < 3; k++) seen.add(memberOf(await get('/src', { localAddress })));
      expect([...seen], localAddress).toHaveLength(1);
      byAddress.set(localAddress, [...seen][0]!);
    }
    const onA = [...byAddress.values()].filter((m) => m === 'a').length;
    expect(Math.abs(onA - 10)).toBeLessThanOrEqual(4);
  });

  it('cookie persistence: the answer sets the cookie of the peer that answered, and a client sending it stays there', async () => {
    const first = await get('/ck');
    const who = memberOf(first);
    expect(first.headers['set-cookie']).toEqual([`SRV=ck-${who}; path=/`]);
    expect(first.headers['cache-control']).toBe('private');
    for (let i = 0; i < 10; i++) {
      const again = await get('/ck', { headers: { cookie: `other=1; SRV=ck-${who}` } });
      expect(memberOf(again)).toBe(who);
      expect(again.headers['set-cookie']).toBeUndefined();
    }
    const unknown = await get('/ck', { headers: { cookie: 'SRV=ck-gone' } });
    expect(unknown.headers['set-cookie']).toEqual([`SRV=ck-${memberOf(unknown)}; path=/`]);
  });

  it('a drained or weight-0 peer keeps its sticky clients only; in maintenance it loses them too', async () => {
    const sticky = { headers: { cookie: 'SRV=ck-a' } };
    for (const a of [peer('a', { admin: 'drain' }), peer('a', { weight: 0 })]) {
      await set('t_acme_ck', upstream('ck', 'roundrobin', [a, peer('b')], 'SRV'));
      for (let i = 0; i < 5; i++) expect(memberOf(await get('/ck', sticky))).toBe('a');
      expect(await tally('/ck', 20)).toEqual({ b: 20 });
    }
    await set('t_acme_ck', upstream('ck', 'roundrobin', [peer('a', { admin: 'maint' }), peer('b')], 'SRV'));
    const moved = await get('/ck', sticky);
    expect(memberOf(moved)).toBe('b');
    expect(moved.headers['set-cookie']).toEqual(['SRV=ck-b; path=/']);
  });

  it('an upstream block that names itself needs nothing from the location, even behind proxy_pass http://$variable', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 10; i++) {
      const who = memberOf(await request({ host: HOST, port: namedPort, path: '/' }));
      counts[who] = (counts[who] ?? 0) + 1;
    }
    expectShares(counts, { c: 5, d: 5 });
  });

  it('a failed attempt is retried on another peer', async () => {
    const closed = await freePort(HOST);
    await set('t_acme_ops', upstream('ops', 'roundrobin', [{ ...peer('a'), name: 'gone', port: closed }, peer('b')]));
    expect(await tally('/ops', 20)).toEqual({ b: 20 });
  });

  it('answers 503 when nothing can take the request, and when the node holds no entry for the upstream', async () => {
    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a', { admin: 'maint' }), peer('b', { weight: 0 })]));
    for (const path of ['/ops', '/none']) {
      const answer = await get(path);
      expect(answer.status).toBe(503);
      // HAProxy's body, whole (nginx had picked its 502 page before the status became 503).
      expect(answer.body).toBe(
        '<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n',
      );
      expect(answer.headers).toMatchObject({
        'content-length': String(Buffer.byteLength(answer.body)),
        'content-type': 'text/html',
        'cache-control': 'no-cache',
      });
    }
  });
});

describe('runtime changes through POST /switchyard/v1/state', () => {
  it('add, remove, weight, drain, maintenance and backup take effect at once, with no reload', async () => {
    const master = node.nginx.pid;
    const workers = node.nginx.workerPids();
    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a'), peer('b')]));
    expectShares(await tally('/ops', 20), { a: 10, b: 10 });

    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a'), peer('b'), peer('c')]));
    expectShares(await tally('/ops', 30), { a: 10, b: 10, c: 10 });

    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a'), peer('c')]));
    expectShares(await tally('/ops', 20), { a: 10, c: 10 });

    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a', { weight: 3 }), peer('c')]));
    expectShares(await tally('/ops', 40), { a: 30, c: 10 });

    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a', { admin: 'drain' }), peer('c')]));
    expect(await tally('/ops', 20)).toEqual({ c: 20 });

    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a', { backup: true }), peer('c')]));
    expect(await tally('/ops', 20)).toEqual({ c: 20 });

    await set(
      't_acme_ops',
      upstream('ops', 'roundrobin', [peer('a', { backup: true }), peer('c', { admin: 'maint' })]),
    );
    expect(await tally('/ops', 20)).toEqual({ a: 20 });

    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a', { backup: true }), peer('c')]));
    expect(await tally('/ops', 20)).toEqual({ c: 20 });

    expect(node.nginx.pid).toBe(master);
    expect(node.nginx.workerPids()).toEqual(workers);
  });

  it('refuses a push older than what the node holds, and changes nothing', async () => {
    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('d')]));
    const current = revision;
    const older = upstream('ops', 'roundrobin', [peer('a')]);
    const answer = await post({
      complete: false,
      upstreams: { t_acme_ops: versioned(older, current - 1) },
      caps: {},
      removed: { upstreams: ['t_acme_rr'], caps: [], revision: 0 },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ applied: 0, stale: ['upstreams.t_acme_ops', 'upstreams.t_acme_rr'], failed: [] });
    const state = await held();
    expect(state.upstreams.t_acme_ops).toEqual({
      revision: current,
      hash: entryHash(upstream('ops', 'roundrobin', [peer('d')])),
    });
    expect(state.upstreams.t_acme_rr).toBeDefined();
    expect(await tally('/ops', 5)).toEqual({ d: 5 });
  });

  it('removes an entry, and then refuses an older push that would bring it back', async () => {
    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('a')]));
    const removedAt = ++revision;
    const removal = await post({
      complete: false,
      upstreams: {},
      caps: {},
      removed: { upstreams: ['t_acme_ops'], caps: [], revision: removedAt },
    });
    expect(removal.body).toEqual({ applied: 1, stale: [], failed: [] });
    expect((await held()).upstreams.t_acme_ops).toBeUndefined();
    expect((await get('/ops')).status).toBe(503);
    const late = await post({
      complete: false,
      upstreams: { t_acme_ops: versioned(upstream('ops', 'roundrobin', [peer('a')]), removedAt - 1) },
      caps: {},
    });
    expect(late.body).toEqual({ applied: 0, stale: ['upstreams.t_acme_ops'], failed: [] });
    expect((await get('/ops')).status).toBe(503);
    await set('t_acme_ops', upstream('ops', 'roundrobin', [peer('b')]));
    expect(await tally('/ops', 3)).toEqual({ b: 3 });
  });

  const good = () => upstream('ops', 'roundrobin', [peer('a'), peer('b')]);
  const entry = (value: unknown) => ({ revision: revision + 100, hash: entryHash(value), value });
  const pushOf = (value: unknown): StatePush =>
    ({ complete: false, upstreams: { t_acme_ops: entry(value) }, caps: {} }) as unknown as StatePush;
  const cases: [string, () => unknown, string][] = [
    ['a body that is not JSON', () => 'complete: true', 'body'],
    ['no complete', () => ({ upstreams: {}, caps: {} }), 'complete'],
    ['complete as a string', () => ({ complete: 'yes', upstreams: {}, caps: {} }), 'complete'],
    ['upstreams as a list', () => ({ complete: false, upstreams: [1], caps: {} }), 'upstreams'],
    ['an unknown top-level field', () => ({ ...pushOf(good()), extra: 1 }), 'extra'],
    [
      'a name nginx would not write',
      () => ({ complete: false, upstreams: { 'a b': entry(good()) }, caps: {} }),
      'upstreams.a b',
    ],
    [
      'a hash that is not 16 hex characters',
      () => ({ complete: false, upstreams: { t_acme_ops: { ...entry(good()), hash: 'XYZ' } }, caps: {} }),
      'upstreams.t_acme_ops.hash',
    ],
    [
      'a negative revision',
      () => ({ complete: false, upstreams: { t_acme_ops: { ...entry(good()), revision: -1 } }, caps: {} }),
      'upstreams.t_acme_ops.revision',
    ],
    ['an unknown algorithm', () => pushOf({ ...good(), algorithm: 'random' }), 'upstreams.t_acme_ops.value.algorithm'],
    [
      'a weight above 256',
      () => pushOf({ ...good(), peers: [peer('a'), peer('b', { weight: 300 })] }),
      'upstreams.t_acme_ops.value.peers[1].weight',
    ],
    [
      'an admin state HAProxy does not have',
      () => pushOf({ ...good(), peers: [{ ...peer('a'), admin: 'down' }] }),
      'upstreams.t_acme_ops.value.peers[0].admin',
    ],
    [
      'a host name for an address',
      () => pushOf({ ...good(), peers: [peer('a', { address: 'localhost' })] }),
      'upstreams.t_acme_ops.value.peers[0].address',
    ],
    [
      'two peers of one name',
      () => pushOf({ ...good(), peers: [peer('a'), peer('a')] }),
      'upstreams.t_acme_ops.value.peers[1].name',
    ],
    [
      'an unknown peer field',
      () => pushOf({ ...good(), peers: [{ ...peer('a'), maxconn: 5 }] }),
      'upstreams.t_acme_ops.value.peers[0].maxconn',
    ],
    [
      'a cookie value that would break the Set-Cookie header',
      () => pushOf({ ...good(), cookie: 'SRV', peers: [peer('a', { cookie: 'x; Domain=evil' })] }),
      'upstreams.t_acme_ops.value.peers[0].cookie',
    ],
    [
      'a check timeout longer than its interval',
      () =>
        pushOf({
          ...good(),
          healthCheck: {
            type: 'http',
            path: '/healthz',
            host: null,
            expectedStatus: [[200, 399]],
            port: null,
            intervalMs: 1000,
            timeoutMs: 5000,
            rise: 2,
            fall: 3,
          },
        }),
      'upstreams.t_acme_ops.value.healthCheck.timeoutMs',
    ],
    [
      'a check path with a line break',
      () =>
        pushOf({
          ...good(),
          healthCheck: {
            type: 'http',
            path: '/x\r\nHost: evil',
            host: null,
            expectedStatus: [[200, 399]],
            port: null,
            intervalMs: 1000,
            timeoutMs: 500,
            rise: 2,
            fall: 3,
          },
        }),
      'upstreams.t_acme_ops.value.healthCheck.path',
    ],
    [
      'negative caps',
      () => ({
        complete: false,
        upstreams: {},
        caps: { acme: entry({ maxConnections: -1, requestsPerSecond: 5 }) },
      }),
      'caps.acme.value.maxConnections',
    ],
    [
      'a removal without its revision',
      () => ({ complete: false, upstreams: {}, caps: {}, removed: { upstreams: ['t_acme_rr'], caps: [] } }),
      'removed.revision',
    ],
  ];

  it.each(cases)('answers 400 naming the field for %s, and changes nothing', async (_what, body, field) => {
    const before = await held();
    const answer = await post(body());
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body.error.field).toBe(field);
    expect(answer.body.error.message).toEqual(expect.any(String));
    expect(await held()).toEqual(before);
  });

  it('applies nothing of a push whose last entry is bad, not even its good entries', async () => {
    const before = await held();
    const answer = await post({
      complete: false,
      upstreams: {
        t_acme_ops: entry(upstream('ops', 'roundrobin', [peer('c')])),
        t_acme_rr: entry({ ...good(), pool: '' }),
      },
      caps: {},
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.field).toBe('upstreams.t_acme_rr.value.pool');
    expect(await held()).toEqual(before);
  });

  it('answers 413 for a body over the limit', async () => {
    const answer = await post(JSON.stringify({ complete: false, upstreams: {}, caps: {}, pad: 'x'.repeat(1_100_000) }));
    expect(answer.status).toBe(413);
    expect(answer.body.error.field).toBe('body');
  });
});

describe('the runtime channel', () => {
  it('refuses a client without a certificate: nginx answers 400 and the module never sees the request', async () => {
    const before = await held();
    const answer = await post(completePush({ revision: 999, upstreams: {}, caps: {} }), { ca: certs.ca.cert });
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('No required SSL certificate was sent');
    expect(await held()).toEqual(before);
  });

  it('refuses a certificate from another CA the same way', async () => {
    const before = await held();
    const answer = await post(completePush({ revision: 999, upstreams: {}, caps: {} }), certs.stranger);
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('The SSL certificate error');
    expect(await held()).toEqual(before);
  });

  it('refuses on its own (403) where the server block forgot to require the certificate', async () => {
    const loose = { host: HOST, port: looseChannelPort };
    const before = await held();
    for (const tls of [{ ca: certs.ca.cert }, certs.stranger]) {
      const answer = await channelRequest(
        loose,
        tls,
        'POST',
        '/switchyard/v1/state',
        completePush({ revision: 999, upstreams: {}, caps: {} }),
      );
      expect(answer.status).toBe(403);
      expect(answer.body.error.message).toEqual(expect.any(String));
    }
    expect(await held()).toEqual(before);
  });

  it('answers 404 for an unknown path and 405 for a method its path does not take', async () => {
    const missing = await channelRequest(node.channel, certs.controlPlane, 'GET', '/switchyard/v1/nothing');
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain('/switchyard/v1/nothing');
    const wrong = await channelRequest(node.channel, certs.controlPlane, 'DELETE', '/switchyard/v1/state');
    expect(wrong.status).toBe(405);
    expect(wrong.body.error.field).toBe('method');
  });

  it('GET /stats answers what switchyard.stats reports, or 501 on a module without it', async () => {
    const answer = await channelRequest(node.channel, certs.controlPlane, 'GET', '/switchyard/v1/stats');
    if (existsSync(join(LUA_DIR, 'switchyard', 'stats.lua'))) {
      expect(answer.status).toBe(200);
      expect(answer.body.now).toEqual(expect.any(Number));
    } else {
      expect(answer.status).toBe(501);
      expect(answer.body.error.message).toEqual(expect.any(String));
    }
  });
});
