import type http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NginxCounters, NginxStats } from '../../src/domain/nginx-runtime.js';
import {
  get,
  LuaNginx,
  peer,
  startBackend,
  upstream,
  type Backend,
  type TestState,
} from './nginx-lua-observe-support.js';

/**
 * switchyard.stats on real nginx with two workers: the counters per VIP, upstream and peer agree
 * exactly with what a client sent and received (requests, status classes, 429 denied and 503
 * refused by the caps, bytes both ways), requests in flight are counted while they are, the report
 * lists every peer of the state with its health, and a full dictionary loses new counters (counted
 * as overflow) without evicting the ones it holds or failing a request.
 */

const WEB = 'acme/web';

let node: LuaNginx;
let m1: Backend;
let m2: Backend;
const held: http.ServerResponse[] = [];

function release(): void {
  for (const res of held.splice(0)) res.writeHead(200).end('released');
}

function member(name: string): Promise<Backend> {
  return startBackend((req, res) => {
    if (req.url === '/hold') return void held.push(res);
    const answer = () => res.writeHead(req.url === '/missing' ? 404 : 200, { 'x-member': name }).end(`member ${name}`);
    if (req.url === '/slow') setTimeout(answer, 30);
    else answer();
  });
}

function state(caps: TestState['caps']): TestState {
  return {
    upstreams: {
      t_acme_web: upstream('acme', 'web', [peer('m1', m1.port), peer('m2', m2.port)]),
      t_globex_shop: upstream('globex', 'shop', [peer('m1', m1.port), peer('idle', 9, { admin: 'maint' })]),
    },
    caps,
  };
}

interface Exchange {
  readonly path: string;
  readonly status: number;
  /** Bytes of the request as sent: nginx's $request_length. */
  readonly sent: number;
  /** Every byte nginx sent back before closing: its $bytes_sent. */
  readonly received: number;
  readonly member: string | null;
}

/** One request on its own connection, written and read as raw bytes so both sides can be counted exactly. */
function exchange(port: number, path: string): Promise<Exchange> {
  const request = `GET ${path} HTTP/1.1\r\nHost: shop.example.test\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(request));
    // A request over the connection cap waits up to caps.lua's SLOT_QUEUE_S (10 s) for its 503.
    socket.setTimeout(15_000, () => socket.destroy(new Error(`GET ${path} timed out`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const reply = Buffer.concat(chunks);
      const text = reply.toString('latin1');
      resolve({
        path,
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        sent: Buffer.byteLength(request),
        received: reply.length,
        member: /^x-member: (\S+)/im.exec(text)?.[1] ?? null,
      });
    });
  });
}

const FIELDS = [
  'requests',
  'responses2xx',
  'responses3xx',
  'responses4xx',
  'responses5xx',
  'denied',
  'refused',
  'bytesIn',
  'bytesOut',
] as const satisfies readonly (keyof NginxCounters)[];

type Counts = Record<(typeof FIELDS)[number], number>;

function delta(after: NginxCounters | undefined, before: NginxCounters | undefined): Counts {
  return Object.fromEntries(FIELDS.map((f) => [f, (after?.[f] ?? 0) - (before?.[f] ?? 0)])) as Counts;
}

/** The counters a set of exchanges should have made. */
function expected(list: readonly Exchange[]): Counts {
  const count = (p: (e: Exchange) => boolean) => list.filter(p).length;
  return {
    requests: list.length,
    responses2xx: count((e) => e.status >= 200 && e.status < 300),
    responses3xx: count((e) => e.status >= 300 && e.status < 400),
    responses4xx: count((e) => e.status >= 400 && e.status < 500),
    responses5xx: count((e) => e.status >= 500),
    denied: count((e) => e.status === 429),
    refused: count((e) => e.status === 503),
    bytesIn: list.reduce((sum, e) => sum + e.sent, 0),
    bytesOut: list.reduce((sum, e) => sum + e.received, 0),
  };
}

async function inBatches<T>(count: number, size: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < count; i += size) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(size, count - i) }, (_, j) => run(i + j)))));
  }
  return out;
}

beforeAll(async () => {
  m1 = await member('m1');
  m2 = await member('m2');
  node = await LuaNginx.start({
    workers: 2,
    servers: [
      { tenant: 'acme', vip: 'web', upstream: 't_acme_web' },
      { tenant: 'globex', vip: 'shop', upstream: 't_globex_shop' },
    ],
  });
});

afterAll(async () => {
  release();
  await node?.stop();
  await m1?.close();
  await m2?.close();
});

describe('per-tenant stats on nginx', () => {
  it('counts exactly what a client sent: requests, status classes, 429 denied by the cap, bytes both ways, latency', async () => {
    await node.setState(state({ acme: { maxConnections: 1000, requestsPerSecond: 60 } }));
    const before = await node.stats();
    const paths = ['/', '/', '/missing', '/slow', '/'];
    // All at once: more than the cap admits and its queue holds (a second of the cap), so some are refused.
    const sent = await inBatches(200, 200, (i) => exchange(node.port(WEB), paths[i % paths.length]!));
    const served = sent.filter((e) => e.status !== 429);
    expect(sent.filter((e) => e.status === 429).length).toBeGreaterThan(0); // the cap took part
    expect(sent.filter((e) => e.status === 404).length).toBeGreaterThan(0);

    // log_by_lua runs after the response is sent: wait for the last one, then everything must agree.
    await expect.poll(async () => delta((await node.stats()).vips[WEB], before.vips[WEB]).requests).toBe(200);
    const after = await node.stats();
    expect(delta(after.vips[WEB], before.vips[WEB])).toEqual(expected(sent));
    expect(delta(after.upstreams.t_acme_web, before.upstreams.t_acme_web)).toEqual(expected(served));
    for (const name of ['m1', 'm2']) {
      const key = `t_acme_web/${name}`;
      expect(delta(after.peers[key], before.peers[key])).toEqual(expected(served.filter((e) => e.member === name)));
    }
    expect(after.vips[WEB]).toMatchObject({ tenant: 'acme', vip: 'web', active: 0 });
    expect(after.upstreams.t_acme_web).toMatchObject({ tenant: 'acme', pool: 'web', active: 0 });

    const slow = served.filter((e) => e.path === '/slow').length;
    const latency = after.vips[WEB]!.latencyMsSum - (before.vips[WEB]?.latencyMsSum ?? 0);
    expect(slow).toBeGreaterThan(0);
    expect(latency).toBeGreaterThanOrEqual(30 * slow);
    expect(after.peers['t_acme_web/m1']!.latencyMsSum + after.peers['t_acme_web/m2']!.latencyMsSum).toBe(
      after.upstreams.t_acme_web!.latencyMsSum,
    );
  });

  it('counts requests in flight per VIP, upstream, peer and tenant while they are, and 503s of the connection cap as refused', async () => {
    await node.setState(state({ acme: { maxConnections: 2, requestsPerSecond: 1000 } }));
    const before = await node.stats();
    const slow = [exchange(node.port(WEB), '/hold'), exchange(node.port(WEB), '/hold')];
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(2);
    const during = await node.stats();
    expect(during.vips[WEB]?.active).toBe(2);
    expect(during.upstreams.t_acme_web?.active).toBe(2);
    expect(during.peers['t_acme_web/m1']!.active + during.peers['t_acme_web/m2']!.active).toBe(2);
    expect(during.tenants.acme?.active).toBe(2);
    expect(during.tenants.globex?.active).toBe(0);

    // Refused once they have waited for a slot the whole queue time (10 s).
    const refused = await Promise.all([0, 1, 2].map(() => exchange(node.port(WEB), '/')));
    expect(refused.map((e) => e.status)).toEqual([503, 503, 503]);
    release();
    const done = await Promise.all(slow);
    await expect.poll(async () => delta((await node.stats()).vips[WEB], before.vips[WEB]).requests).toBe(5);
    const after = await node.stats();
    expect(delta(after.vips[WEB], before.vips[WEB])).toEqual(expected([...done, ...refused]));
    expect(delta(after.upstreams.t_acme_web, before.upstreams.t_acme_web)).toEqual(expected(done));
    expect([after.vips[WEB]?.active, after.upstreams.t_acme_web?.active, after.tenants.acme?.active]).toEqual([
      0, 0, 0,
    ]);
  }, 30_000);

  it('reports every VIP that has had a request and every peer of the state with its health; requests outside tenant servers are not counted', async () => {
    await node.setState(state({}));
    expect((await get(node.port('globex/shop'))).status).toBe(200);
    // The log phase counts a request after its response is sent: wait for it, not a race with it.
    await expect.poll(async () => (await node.stats()).vips['globex/shop']?.requests, { timeout: 5000 }).toBe(1);
    const stats: NginxStats = await node.stats();
    expect(Object.keys(stats.vips).sort()).toEqual(['acme/web', 'globex/shop']);
    expect(Object.keys(stats.upstreams).sort()).toEqual(['t_acme_web', 't_globex_shop']);
    expect(Object.keys(stats.peers).sort()).toEqual([
      't_acme_web/m1',
      't_acme_web/m2',
      't_globex_shop/idle',
      't_globex_shop/m1',
    ]);
    expect(stats.peers['t_globex_shop/idle']).toEqual({
      upstream: 't_globex_shop',
      peer: 'idle',
      active: 0,
      health: 'unchecked',
      lastCheck: null,
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
    });
    expect(stats.vips['globex/shop']).toMatchObject({ tenant: 'globex', vip: 'shop', requests: 1, responses2xx: 1 });
    expect(Object.keys(stats.tenants).sort()).toEqual(['acme', 'globex']);
    expect(Math.abs(stats.now - Date.now())).toBeLessThan(5000);
  });

  it('when the stats dictionary is full, drops only new counters (reported as overflow) and fails no request', async () => {
    // One worker, so round robin over 100 peers is exact: 300 requests give each peer 3.
    const small = await LuaNginx.start({
      workers: 1,
      servers: [{ tenant: 'acme', vip: 'web', upstream: 't_acme_web' }],
      dicts: { sy_stats: '12k' },
    });
    try {
      const peers = Array.from({ length: 100 }, (_, i) => peer(`m${String(i).padStart(3, '0')}`, m1.port));
      await small.setState({ upstreams: { t_acme_web: upstream('acme', 'web', peers) }, caps: {} });
      const statuses: number[] = [];
      for (let i = 0; i < 300; i++) statuses.push((await get(small.port(WEB))).status);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);

      // The last request is counted in its log phase, after its response: wait for it.
      await expect.poll(async () => (await small.stats()).vips[WEB]?.requests, { timeout: 5000 }).toBe(300);
      const stats = await small.stats();
      expect(stats.overflow.sy_stats).toBeGreaterThan(0);
      // What the dictionary held before it filled is intact: nothing was evicted to make room.
      expect(stats.vips[WEB]).toMatchObject({ requests: 300, responses2xx: 300 });
      expect(stats.upstreams.t_acme_web).toMatchObject({ requests: 300, responses2xx: 300 });
      expect(stats.peers['t_acme_web/m000']).toMatchObject({ requests: 3, responses2xx: 3 });
      expect(stats.peers['t_acme_web/m099']).toMatchObject({ requests: 0 });
      expect(small.errors().join('\n')).toBe('');
    } finally {
      await small.stop();
    }
  });

  it('logs no errors', () => {
    expect(node.errors().join('\n')).toBe('');
  });
});
