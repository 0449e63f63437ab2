import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  completePush,
  entryHash,
  type NginxPeer,
  type NginxUpstream,
  versioned,
} from '../../src/domain/nginx-runtime.js';
import { type Closable, freePort, httpMember, request } from './haproxy-render-support.js';
import { type ChannelPki, channelPki, HOST, LuaNode, memberOf, peerOf, upstreamOf } from './nginx-lua-support.js';

/**
 * What the node keeps: runtime state across reloads (shared dictionaries survive `nginx -s
 * reload`; runtime-state.json is reapplied with the revision rule), a full sy_state (the entry
 * that does not fit fails alone, nothing held is lost), and peers the health checks call down.
 * Real nginx and real members on loopback; reloads are HUP to the master's own PID.
 */

const TENANT = 'acme';
let certs: ChannelPki;
const members = new Map<string, Closable & { port: number }>();

function peer(name: string, overrides: Partial<NginxPeer> = {}): NginxPeer {
  const port = members.get(name)?.port;
  if (port === undefined) throw new Error(`no member ${name}`);
  return peerOf(name, port, overrides);
}

const web = (...peers: NginxPeer[]): NginxUpstream => upstreamOf(TENANT, 'web', 'roundrobin', peers);

beforeAll(async () => {
  certs = await channelPki();
  for (const name of ['a', 'b', 'c']) members.set(name, await httpMember(name, HOST));
});

afterAll(async () => {
  for (const m of members.values()) await m.close();
  await certs?.pki.dispose();
});

describe('across reloads', () => {
  let node: LuaNode;
  const pool = (name: string, ...peers: NginxPeer[]) => upstreamOf(TENANT, name, 'roundrobin', peers);
  const file = (revision: number, upstreams: Record<string, NginxUpstream>) =>
    completePush({ revision, upstreams, caps: {} });

  beforeAll(async () => {
    node = await LuaNode.start(certs, {
      locations: { '/web': 't_acme_web', '/api': 't_acme_api', '/new': 't_acme_new' },
      stateFile: file(1, { t_acme_web: pool('web', peer('a')) }),
    });
  });

  afterAll(async () => {
    await node?.nginx.remove();
  });

  it('state pushed at run time survives a reload, and wins over an older file; a newer file wins over it', async () => {
    const master = node.nginx.pid;
    expect(memberOf(await node.get('/web'))).toBe('a');
    const pushed = await node.post({
      complete: false,
      upstreams: {
        t_acme_web: versioned(pool('web', peer('b')), 5),
        t_acme_new: versioned(pool('new', peer('c')), 12),
      },
      caps: {},
    });
    expect(pushed.body).toEqual({ applied: 2, stale: [], failed: [] });

    // The same file: nothing of it is reapplied.
    const workers = node.nginx.workerPids();
    await node.nginx.reload();
    expect(node.nginx.workerPids().some((pid) => workers.includes(pid))).toBe(false);
    expect(memberOf(await node.get('/web'))).toBe('b');
    expect(memberOf(await node.get('/new'))).toBe('c');

    // An older file: its entries lose to the pushed ones, its new ones are added.
    node.nginx.writeStateFile(file(3, { t_acme_web: pool('web', peer('c')), t_acme_api: pool('api', peer('a')) }));
    await node.nginx.reload();
    expect(memberOf(await node.get('/web'))).toBe('b');
    expect(memberOf(await node.get('/api'))).toBe('a');
    let held = await node.held();
    expect(held.fileRevision).toBe(3);
    expect(held.upstreams.t_acme_web!.revision).toBe(5);

    // A newer file: it wins, and being complete it removes what it does not name, unless newer.
    node.nginx.writeStateFile(file(10, { t_acme_web: pool('web', peer('c')) }));
    await node.nginx.reload();
    expect(memberOf(await node.get('/web'))).toBe('c');
    expect((await node.get('/api')).status).toBe(503);
    expect(memberOf(await node.get('/new'))).toBe('c');
    held = await node.held();
    expect(held.fileRevision).toBe(10);
    expect(Object.keys(held.upstreams).sort()).toEqual(['t_acme_new', 't_acme_web']);
    expect(node.nginx.pid).toBe(master);
  });

  it('a complete push removes the entries it does not name, up to its revision, and reports newer ones stale', async () => {
    const answer = await node.post({ ...file(11, { t_acme_api: pool('api', peer('b')) }) });
    expect(answer.body).toEqual({ applied: 1, stale: ['upstreams.t_acme_new'], failed: [] });
    expect((await node.get('/web')).status).toBe(503);
    expect(memberOf(await node.get('/api'))).toBe('b');
    expect(memberOf(await node.get('/new'))).toBe('c');
  });

  it('a reload that resizes sy_state starts it empty, and the file fills it again', async () => {
    node.nginx.writeStateFile(file(20, { t_acme_web: pool('web', peer('a')) }));
    await node.nginx.reload();
    node.resizeDicts({ sy_state: '8m' });
    await node.nginx.reload();
    const held = await node.held();
    expect(held.fileRevision).toBe(20);
    // t_acme_new (pushed at revision 12, newer than any file) lived only in the old dictionary.
    expect(held.upstreams).toEqual({
      t_acme_web: { revision: 20, hash: entryHash(pool('web', peer('a'))) },
    });
    expect(memberOf(await node.get('/web'))).toBe('a');
  });
});

describe('a full sy_state', () => {
  let node: LuaNode;

  beforeAll(async () => {
    node = await LuaNode.start(certs, {
      workers: 1,
      locations: { '/web': 't_acme_web' },
      dicts: { sy_state: '64k' },
      stateFile: completePush({ revision: 1, upstreams: { t_acme_web: web(peer('a')) }, caps: {} }),
    });
  });

  afterAll(async () => {
    await node?.nginx.remove();
  });

  /** An upstream of 200 peers: about 20 kB of JSON. */
  const big = (pool: string) =>
    upstreamOf(
      TENANT,
      pool,
      'roundrobin',
      Array.from({ length: 200 }, (_, i) => peer('b', { name: `peer-${String(i).padStart(3, '0')}` })),
    );

  it('fails the entries that do not fit (507), and loses nothing it held', async () => {
    const upstreams = Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [`t_acme_big${i}`, versioned(big(`big${i}`), 2)]),
    );
    const answer = await node.post({ complete: false, upstreams, caps: {} });
    expect(answer.status).toBe(507);
    const reply = answer.body as { applied: number; failed: { key: string; error: string }[] };
    expect(reply.failed.length).toBeGreaterThan(0);
    expect(reply.applied + reply.failed.length).toBe(6);
    expect(reply.failed[0]!.error).toContain('sy_state is full');
    expect(answer.body.error.field).toBe(reply.failed[0]!.key);
    const held = await node.held();
    expect(Object.keys(held.upstreams)).toHaveLength(1 + reply.applied);
    for (const { key } of reply.failed) expect(held.upstreams[key.replace('upstreams.', '')]).toBeUndefined();
    expect(memberOf(await node.get('/web'))).toBe('a');
  });

  it('keeps the held version of an entry whose new version does not fit', async () => {
    const answer = await node.post({
      complete: false,
      upstreams: { t_acme_web: versioned({ ...big('web'), peers: [peer('c'), ...big('web').peers] }, 3) },
      caps: {},
    });
    expect(answer.status).toBe(507);
    expect(answer.body.failed).toEqual([{ key: 'upstreams.t_acme_web', error: expect.stringContaining('full') }]);
    expect((await node.held()).upstreams.t_acme_web).toEqual({ revision: 1, hash: entryHash(web(peer('a'))) });
    expect(memberOf(await node.get('/web'))).toBe('a');
  });
});

describe('peers the health checks call down', () => {
  let node: LuaNode;
  let stubDir: string;
  let switchPort: number;
  let revision = 1;

  const set = async (value: NginxUpstream) => {
    const answer = await node.post({
      complete: false,
      upstreams: { t_acme_web: versioned(value, ++revision) },
      caps: {},
    });
    expect(answer.status, answer.text).toBe(200);
  };
  /** Marks exactly these peers of t_acme_web down (the others up). */
  const down = async (...peers: string[]) => {
    const answer = await request({ host: HOST, port: switchPort, path: `/down?peers=${peers.join(',')}` });
    expect(answer.status).toBe(204);
  };

  beforeAll(async () => {
    // The balancer's rules for down peers, without waiting for checks to fail: this stand-in for
    // switchyard.health answers is_down() (all the balancer calls) from flags the test sets. The
    // real checker taking peers down, and traffic avoiding them, is nginx-lua-health.test.ts's.
    stubDir = mkdtempSync(join(tmpdir(), 'sy-health-stub-'));
    chmodSync(stubDir, 0o755);
    mkdirSync(join(stubDir, 'switchyard'));
    writeFileSync(
      join(stubDir, 'switchyard', 'health.lua'),
      [
        '-- Test stand-in for switchyard.health: a peer is down while the test says so.',
        'local M = {}',
        'function M.is_down(tenant, pool, peer)',
        '  return ngx.shared.sy_health:get(tenant .. "/" .. pool .. "/" .. peer) == true',
        'end',
        'function M.start() end',
        'return M',
        '',
      ].join('\n'),
    );
    switchPort = await freePort(HOST);
    node = await LuaNode.start(certs, {
      locations: { '/web': 't_acme_web' },
      luaPathFirst: stubDir,
      extraHttp: [
        `server { listen ${HOST}:${switchPort}; location = /down { content_by_lua_block {`,
        '  local health = ngx.shared.sy_health',
        '  health:flush_all()',
        '  for peer in (ngx.var.arg_peers or ""):gmatch("[^,]+") do health:set("acme/web/" .. peer, true) end',
        '  ngx.exit(204)',
        '} } }',
      ].join('\n'),
      stateFile: completePush({ revision: 1, upstreams: { t_acme_web: web(peer('a'), peer('b')) }, caps: {} }),
    });
  });

  afterAll(async () => {
    await node?.nginx.remove();
    if (stubDir) rmSync(stubDir, { recursive: true, force: true });
  });

  it('sends nothing to a down peer, and again as soon as it is up', async () => {
    await down('b');
    expect(await node.tally('/web', 10)).toEqual({ a: 10 });
    await down();
    const both = await node.tally('/web', 10);
    expect(both.b).toBeGreaterThan(0);
  });

  it('moves the sticky clients of a down peer, with a new cookie', async () => {
    await set(upstreamOf(TENANT, 'web', 'roundrobin', [peer('a'), peer('b')], 'SRV'));
    await down('a');
    const moved = await node.get('/web', { headers: { cookie: 'SRV=ck-a' } });
    expect(memberOf(moved)).toBe('b');
    expect(moved.headers['set-cookie']).toEqual(['SRV=ck-b; path=/']);
    await down();
    expect(memberOf(await node.get('/web', { headers: { cookie: 'SRV=ck-a' } }))).toBe('a');
  });

  it('uses the backup only while no other peer is up, and answers 503 when all are down', async () => {
    await set(web(peer('a'), peer('b'), peer('c', { backup: true })));
    await down('a');
    expect(await node.tally('/web', 6)).toEqual({ b: 6 });
    await down('a', 'b');
    expect(await node.tally('/web', 6)).toEqual({ c: 6 });
    await down('a', 'b', 'c');
    expect((await node.get('/web')).status).toBe(503);
    await down();
    const back = await node.tally('/web', 10);
    expect(back.c).toBeUndefined();
  });
});
