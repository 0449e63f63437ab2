import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseCertificateBundle, type ParsedCertificate } from '../../src/domain/certificate.js';
import {
  type HeldState,
  type NginxStats,
  type NginxUpstream,
  type PushReply,
  versioned,
} from '../../src/domain/nginx-runtime.js';
import type { NodeSnapshot, RenderedFiles, TenantSnapshot } from '../../src/domain/snapshot.js';
import { memberCookieValue } from '../../src/render/haproxy-names.js';
import { renderNginx } from '../../src/render/nginx.js';
import { validateNginx } from '../../src/render/validate-nginx.js';
import { pool, seedMemberCaBundle, seedMemberCertificate, vip } from '../fixtures/seed-snapshot.js';
import { makeCert } from '../support/certs.js';
import { type ChannelAnswer, type ChannelClientTls, channelRequest } from '../support/nginx-lua-harness.js';
import { TestPki } from '../support/openssl.js';
import { freePort } from './haproxy-render-support.js';

/**
 * A rendered configuration on real nginx with the Switchyard Lua module, on loopback, started from
 * exactly the files the renderer gives a node (nginx.conf, runtime-state.jsonl, the module's files,
 * certificates, the runtime channel's certificate): tenant a (HTTP, cookie persistence, routes by
 * host, path and header), tenant b (HTTPS with its own certificate, generated here, and TLS
 * members), tenant c (TCP), tenant d (HTTP with a low rate cap and a source allowlist), tenant e
 * (one HTTP VIP per balancing rule: weights, member states, backups, cookie and source persistence,
 * a pool without members, an active health check) and tenant f (a connection cap of one), each on
 * 127.0.0.x in front of small node members started here, and the runtime channel over mutual TLS
 * with certificates from a test PKI. Only 127.0.0.0/8 is used; every loop is bounded; only the
 * processes started here are stopped, by their PID.
 */

interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: http.Server | net.Server;
  /** HTTP members: what `/healthz` answers (the active check reads it; other paths always answer 200). */
  healthStatus: number;
  /** HTTP members: requests to `/hold` kept unanswered until released. */
  readonly held: http.ServerResponse[];
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** The client's port: requests with the same one went over one connection. */
  readonly localPort: number;
}

const VIP = { a: '127.0.0.11', b: '127.0.0.12', c: '127.0.0.13', d: '127.0.0.14', e: '127.0.0.15', f: '127.0.0.17' };
const CHANNEL_HOST = '127.0.0.16';
const HOST_B = 'b.example.test';
/** Tenant e's VIPs, all on VIP.e, one port each. */
const E_VIPS = ['weights', 'states', 'fallback', 'sticky', 'source', 'empty', 'checked'] as const;
type EVip = (typeof E_VIPS)[number];
const STICKY_COOKIE = 'lb-Sticky';

let dir: string;
let nginx: ChildProcess | null = null;
let certificate: ParsedCertificate;
let pki: TestPki;
let files: RenderedFiles;
const ports: Record<Exclude<keyof typeof VIP, 'e'>, number> = { a: 0, b: 0, c: 0, d: 0, f: 0 };
const ePorts = Object.fromEntries(E_VIPS.map((v) => [v, 0])) as Record<EVip, number>;
const channel = { host: CHANNEL_HOST, port: 0 };
let controlPlane: ChannelClientTls;
let stranger: ChannelClientTls;
const backends = new Map<string, Backend>();

function listen<T extends net.Server>(server: T, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** A member that says who it is and what it was sent; `/healthz` answers its health status, `/hold` waits. */
async function httpBackend(name: string): Promise<Backend> {
  const held: http.ServerResponse[] = [];
  const backend: { -readonly [K in keyof Backend]: Backend[K] } = {
    name,
    port: 0,
    server: http.createServer((req, res) => {
      if (req.url === '/healthz') return void res.writeHead(backend.healthStatus).end();
      if (req.url === '/hold') return void held.push(res);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ member: name, url: req.url, headers: req.headers }));
    }),
    healthStatus: 200,
    held,
  };
  backend.port = await listen(backend.server, '127.0.0.1');
  backends.set(name, backend);
  return backend;
}

/** A member speaking TLS with tenant b's member certificate: says who it is, what it was sent, and the SNI it got. */
async function httpsBackend(name: string): Promise<Backend> {
  const { cert, key } = seedMemberCertificate();
  const server = https.createServer({ cert, key }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        member: name,
        url: req.url,
        headers: req.headers,
        servername: (req.socket as tls.TLSSocket).servername,
      }),
    );
  });
  const backend = { name, server, port: await listen(server, '127.0.0.1'), healthStatus: 200, held: [] };
  backends.set(name, backend);
  return backend;
}

async function echoBackend(name: string): Promise<Backend> {
  const server = net.createServer((socket) => socket.pipe(socket));
  const backend = { name, server, port: await listen(server, '127.0.0.1'), healthStatus: 200, held: [] };
  backends.set(name, backend);
  return backend;
}

function member(name: string, settings: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, address: '127.0.0.1', port: backends.get(name)!.port, ...settings };
}

/** A fresh two-day certificate for HOST_B, as the control plane would have parsed it. */
function generateCertificate(): ParsedCertificate {
  const { certificate, privateKey } = makeCert(HOST_B, 2);
  return parseCertificateBundle(certificate, privateKey, new Date());
}

const HTTP_MEMBERS = [
  'web-1',
  'web-2',
  'api-1',
  'beta-1',
  'small-1',
  'w-1',
  'w-3',
  'ready-1',
  'drain-1',
  'maint-1',
  'zero-1',
  'backup-1',
  'p-1',
  'b-1',
  'b-2',
  'h-1',
  'h-2',
  'late-1',
  'slow-1',
];

function tenantE(): TenantSnapshot {
  const at = (name: EVip, settings: Record<string, unknown>) =>
    vip({ name, address: VIP.e, port: ePorts[name], protocol: 'http', ...settings });
  return {
    id: 'e',
    vips: [
      at('weights', { defaultPool: 'weighted' }),
      at('states', { defaultPool: 'states' }),
      at('fallback', { defaultPool: 'fallback' }),
      at('sticky', { defaultPool: 'states', persistence: 'cookie', cookieName: STICKY_COOKIE }),
      at('source', { defaultPool: 'weighted', persistence: 'source' }),
      at('empty', { defaultPool: 'empty' }),
      at('checked', { defaultPool: 'checked' }),
    ],
    pools: [
      pool({ name: 'weighted' }, [member('w-1', { weight: 1 }), member('w-3', { weight: 3 })]),
      pool({ name: 'states' }, [
        member('ready-1'),
        member('drain-1', { state: 'drain' }),
        member('maint-1', { state: 'disabled' }),
        member('zero-1', { weight: 0 }),
        member('backup-1', { backup: true }),
      ]),
      pool({ name: 'fallback' }, [
        member('p-1', { state: 'disabled' }),
        member('b-1', { backup: true }),
        member('b-2', { backup: true }),
      ]),
      pool({ name: 'empty' }, []),
      pool(
        {
          name: 'checked',
          // Short, so the test is quick; a timeout of 400 ms leaves room on a busy machine.
          healthCheck: { type: 'http', path: '/healthz', intervalMs: 500, timeoutMs: 400, rise: 2, fall: 2 },
        },
        [member('h-1'), member('h-2')],
      ),
    ],
    certificates: [],
    allocation: { maxConnections: 4000, requestsPerSecond: 20_000 },
  };
}

function scenario(configDir: string, runtimeTls: NonNullable<NodeSnapshot['node']['runtimeTls']>): NodeSnapshot {
  const web = pool(
    {
      name: 'web',
      algorithm: 'roundrobin',
      healthCheck: { type: 'http', path: '/healthz', intervalMs: 5000, timeoutMs: 1000 },
    },
    [member('web-1'), member('web-2')],
  );
  const a: TenantSnapshot = {
    id: 'a',
    vips: [
      vip(
        {
          name: 'web',
          address: VIP.a,
          port: ports.a,
          protocol: 'http',
          hostnames: ['www.example.test'],
          persistence: 'cookie',
          defaultPool: 'web',
        },
        [
          { name: 'beta-header', priority: 5, match: { header: { name: 'X-Beta', value: 'yes' } }, pool: 'beta' },
          { name: 'api-host', priority: 10, match: { host: 'api.example.test' }, pool: 'api' },
          { name: 'api-path', priority: 20, match: { pathPrefix: '/api/' }, pool: 'api' },
        ],
      ),
    ],
    pools: [web, pool({ name: 'api' }, [member('api-1')]), pool({ name: 'beta' }, [member('beta-1')])],
    certificates: [],
    allocation: { maxConnections: 4000, requestsPerSecond: 20_000 },
  };
  const b: TenantSnapshot = {
    id: 'b',
    vips: [
      vip({
        name: 'api',
        address: VIP.b,
        port: ports.b,
        protocol: 'https',
        hostnames: [HOST_B],
        certificate: 'b-cert',
        defaultPool: 'secure',
      }),
    ],
    // TLS members, verified against the tenant's CA bundle with a fixed SNI, as in the seed scenario.
    pools: [
      pool(
        {
          name: 'secure',
          algorithm: 'leastconn',
          healthCheck: { type: 'https', path: '/healthz' },
          tls: { caBundle: 'b-members', sni: { from: 'fixed', name: 'api.b.internal' } },
        },
        [member('secure-1')],
      ),
    ],
    certificates: [
      { name: 'b-cert', chainPem: certificate.chainPem, keyPem: certificate.keyPem, sans: certificate.sans },
    ],
    caBundles: [seedMemberCaBundle()],
    allocation: { maxConnections: 8000, requestsPerSecond: 40_000 },
  };
  const c: TenantSnapshot = {
    id: 'c',
    vips: [
      vip({
        name: 'echo',
        address: VIP.c,
        port: ports.c,
        protocol: 'tcp',
        allowlist: ['127.0.0.0/8'],
        defaultPool: 'echo',
      }),
    ],
    pools: [pool({ name: 'echo', algorithm: 'source', healthCheck: { type: 'tcp' } }, [member('echo-1')])],
    certificates: [],
    allocation: { maxConnections: 2000, requestsPerSecond: 10_000 },
  };
  const d: TenantSnapshot = {
    id: 'd',
    vips: [
      vip({
        name: 'small',
        address: VIP.d,
        port: ports.d,
        protocol: 'http',
        allowlist: ['127.0.0.1'],
        defaultPool: 'small',
      }),
    ],
    pools: [pool({ name: 'small' }, [member('small-1')])],
    certificates: [],
    allocation: { maxConnections: 50, requestsPerSecond: 2 },
  };
  const f: TenantSnapshot = {
    id: 'f',
    vips: [vip({ name: 'one', address: VIP.f, port: ports.f, protocol: 'http', defaultPool: 'slow' })],
    pools: [pool({ name: 'slow' }, [member('slow-1')])],
    certificates: [],
    allocation: { maxConnections: 1, requestsPerSecond: 1000 },
  };
  return {
    revision: 1,
    node: {
      name: 'edge-it',
      kind: 'nginx',
      runtimeAddress: { host: CHANNEL_HOST, port: channel.port },
      runtimeTls,
      capacity: { vcpu: 2, memoryMb: 1024 },
      configDir,
    },
    tenants: [a, b, c, d, tenantE(), f],
  };
}

/**
 * Writes the rendered files as a node's agent would: the workers run as an unprivileged user and
 * read the Lua module and write temp files under the directory, so directories are 0755 whatever
 * the umask; private keys (the VIP's and the channel's) are the master's alone.
 */
function writeRendered(root: string, rendered: RenderedFiles): void {
  for (const [name, content] of Object.entries(rendered)) {
    const path = join(root, name);
    for (let d = dirname(path); d !== root && relative(root, d) !== ''; d = dirname(d)) {
      mkdirSync(d, { recursive: true });
      chmodSync(d, 0o755);
    }
    const secret = name.endsWith('.key') || name === 'runtime-api/node.pem';
    writeFileSync(path, content, { mode: secret ? 0o600 : 0o644 });
  }
}

function get(
  host: string,
  port: number,
  path: string,
  headers: Record<string, string> = {},
  options: { localAddress?: string; agent?: http.Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, path, headers, timeout: 5000, ...options, agent: options.agent ?? false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body, localPort: res.socket?.localPort ?? 0 }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${host}:${port}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const memberOf = (reply: Reply): string => {
  expect(reply.status, reply.body).toBe(200);
  return (JSON.parse(reply.body) as { member: string }).member;
};

/** Requests to one of tenant e's VIPs, each on a connection of its own, counted by the member that answered. */
async function tally(vipName: EVip, n: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const who = memberOf(await get(VIP.e, ePorts[vipName], '/', headers));
    counts[who] = (counts[who] ?? 0) + 1;
  }
  return counts;
}

function channelCall(method: string, path: string, body?: unknown, client = controlPlane): Promise<ChannelAnswer> {
  return channelRequest(channel, client, method, path, body);
}

async function stats(): Promise<NginxStats> {
  const answer = await channelCall('GET', '/switchyard/v1/stats');
  expect(answer.status, answer.text).toBe(200);
  return answer.body as NginxStats;
}

/** runtime-state.jsonl's entries, as rendered. */
function renderedEntries(): { upstream?: string; caps?: string; hash: string; value: unknown }[] {
  return files['runtime-state.jsonl']!.trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => JSON.parse(line));
}

function connects(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
  });
}

async function waitUntilListening(host: string, port: number): Promise<void> {
  const listening = async () => {
    try {
      await connects(host, port);
    } catch (err) {
      if (nginx?.exitCode !== null)
        throw new Error(`nginx exited early: ${readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000)}`);
      throw err;
    }
  };
  // Generous: the master reads the Lua module and the state before it binds, and the machine may be busy.
  await vi.waitFor(listening, { timeout: 20_000, interval: 50 }).catch((err: unknown) => {
    throw new Error(`nothing listens on ${host}:${port} after 20 s: ${String(err)}`, { cause: err });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-nginx-it-'));
  // nginx workers run as an unprivileged user and create their temp files in here.
  chmodSync(dir, 0o755);
  certificate = generateCertificate();
  pki = await TestPki.create();
  const ca = await pki.root('Switchyard Control Plane CA');
  const node = await pki.issue('edge-it', ca, { sans: [`IP:${CHANNEL_HOST}`] });
  const client = await pki.issue('switchyard-control-plane', ca);
  const impostor = await pki.issue('switchyard-control-plane', await pki.root('Some Other CA'));
  controlPlane = { ca: ca.cert, cert: client.cert, key: client.key };
  stranger = { ca: ca.cert, cert: impostor.cert, key: impostor.key };
  for (const name of HTTP_MEMBERS) await httpBackend(name);
  await httpsBackend('secure-1');
  await echoBackend('echo-1');
  for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort(VIP[key]);
  for (const name of E_VIPS) ePorts[name] = await freePort(VIP.e);
  channel.port = await freePort(CHANNEL_HOST);

  files = renderNginx(scenario(dir, { certificatePem: node.cert, keyPem: node.key, caBundlePem: ca.cert }));
  expect(await validateNginx(files, dir)).toEqual({ ok: true, warnings: [] });
  writeRendered(dir, files);
  nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', `${dir}/`, '-g', 'daemon off;'], { stdio: 'ignore' });
  for (const key of Object.keys(ports) as (keyof typeof ports)[]) await waitUntilListening(VIP[key], ports[key]);
  for (const name of E_VIPS) await waitUntilListening(VIP.e, ePorts[name]);
  await waitUntilListening(channel.host, channel.port);
});

afterAll(async () => {
  const child = nginx;
  if (child !== null && child.exitCode === null && child.pid !== undefined) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM'); // fast shutdown: the master stops its own workers
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  for (const { server, held } of backends.values()) {
    for (const res of held) res.destroy();
    if (server instanceof http.Server) server.closeAllConnections();
    server.close();
  }
  await pki?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('nginx serving the rendered configuration', () => {
  it('holds every entry of the rendered runtime-state.jsonl at its hash, as the channel reports it', async () => {
    const answer = await channelCall('GET', '/switchyard/v1/state');
    expect(answer.status, answer.text).toBe(200);
    const held = answer.body as HeldState;
    const entries = renderedEntries();
    const hashes = (kind: 'upstream' | 'caps') =>
      Object.fromEntries(entries.filter((e) => e[kind] !== undefined).map((e) => [e[kind]!, e.hash]));
    expect(Object.fromEntries(Object.entries(held.upstreams).map(([k, v]) => [k, v.hash]))).toEqual(hashes('upstream'));
    expect(Object.fromEntries(Object.entries(held.caps).map(([k, v]) => [k, v.hash]))).toEqual(hashes('caps'));
  });

  it('answers the control plane on the runtime channel, and a client of another CA or none not at all', async () => {
    expect((await channelCall('GET', '/switchyard/v1/stats', undefined, stranger)).status).toBe(400);
    expect((await channelCall('GET', '/switchyard/v1/stats', undefined, { ca: controlPlane.ca })).status).toBe(400);
    expect((await channelCall('GET', '/elsewhere')).status).toBe(404);
  });

  it('forwards requests to the members, with the forwarded headers', async () => {
    const reply = await get(VIP.a, ports.a, '/hello', { host: 'www.example.test' });
    expect(reply.status).toBe(200);
    const seen = JSON.parse(reply.body) as { member: string; url: string; headers: Record<string, string> };
    expect(['web-1', 'web-2']).toContain(seen.member);
    expect(seen.url).toBe('/hello');
    expect(seen.headers.host).toBe('www.example.test');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    const members = new Set<string>();
    for (let i = 0; i < 30; i++) members.add(memberOf(await get(VIP.a, ports.a, '/', { host: 'www.example.test' })));
    expect([...members].sort()).toEqual(['web-1', 'web-2']);
  });

  it('routes by header, host and path in priority order, and sends the rest to the default pool', async () => {
    const routeOf = async (path: string, headers: Record<string, string>) =>
      memberOf(await get(VIP.a, ports.a, path, headers));
    expect(await routeOf('/api/users', { host: 'www.example.test' })).toBe('api-1');
    expect(await routeOf('/', { host: 'api.example.test' })).toBe('api-1');
    expect(await routeOf('/api/users', { host: 'api.example.test', 'x-beta': 'yes' })).toBe('beta-1');
    expect(await routeOf('/', { host: 'www.example.test', 'x-beta': 'YES' })).not.toBe('beta-1');
    expect(await routeOf('/apix', { host: 'www.example.test' })).toMatch(/^web-/);
  });

  it('keeps a client on one member with the cookie HAProxy would set, and a cookie naming a member sends it there', async () => {
    const host = { host: 'www.example.test' };
    const first = await get(VIP.a, ports.a, '/', host);
    const stuck = memberOf(first);
    const value = memberCookieValue('a', 'web', stuck);
    expect(first.headers['set-cookie']).toEqual([`SRVID=${value}; path=/`]);
    expect(first.headers['cache-control']).toBe('private');
    for (let i = 0; i < 15; i++) {
      const reply = await get(VIP.a, ports.a, '/', { ...host, cookie: `other=1; SRVID=${value}` });
      expect(memberOf(reply)).toBe(stuck);
      expect(reply.headers['set-cookie']).toBeUndefined();
    }
    const other = stuck === 'web-1' ? 'web-2' : 'web-1';
    const moved = await get(VIP.a, ports.a, '/', { ...host, cookie: `SRVID=${memberCookieValue('a', 'web', other)}` });
    expect(memberOf(moved)).toBe(other);
    expect(moved.headers['set-cookie']).toBeUndefined();
    // A value naming no member is balanced like no cookie, and replaced.
    const stale = await get(VIP.a, ports.a, '/', { ...host, cookie: 'SRVID=0000000000000000' });
    expect(stale.headers['set-cookie']).toEqual([`SRVID=${memberCookieValue('a', 'web', memberOf(stale))}; path=/`]);
  });

  it('splits requests by weight: 1:3 gives exactly 100 and 300 of 400 requests on one connection', async () => {
    // Round robin is smooth and per worker, as nginx's own: one connection stays on one worker.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const counts: Record<string, number> = {};
      const connections = new Set<number>();
      for (let i = 0; i < 400; i++) {
        const reply = await get(VIP.e, ePorts.weights, '/', {}, { agent });
        connections.add(reply.localPort);
        const who = memberOf(reply);
        counts[who] = (counts[who] ?? 0) + 1;
      }
      expect(connections.size).toBe(1);
      expect(counts).toEqual({ 'w-1': 100, 'w-3': 300 });
    } finally {
      agent.destroy();
    }
  });

  it('sends no new request to a draining member, one in maintenance, one of weight 0, or a backup while a primary can serve', async () => {
    expect(await tally('states', 40)).toEqual({ 'ready-1': 40 });
  });

  it('when no primary member can serve, then the backups take the requests, balanced among themselves', async () => {
    const counts = await tally('fallback', 20);
    expect(Object.keys(counts).sort()).toEqual(['b-1', 'b-2']);
  });

  it('with cookie persistence, a draining or weight-0 member keeps its clients and one in maintenance loses them', async () => {
    const cookie = (who: string) => ({ cookie: `${STICKY_COOKIE}=${memberCookieValue('e', 'states', who)}` });
    const fresh = await get(VIP.e, ePorts.sticky, '/');
    expect(memberOf(fresh)).toBe('ready-1');
    expect(fresh.headers['set-cookie']).toEqual([
      `${STICKY_COOKIE}=${memberCookieValue('e', 'states', 'ready-1')}; path=/`,
    ]);
    for (const who of ['drain-1', 'zero-1']) {
      const reply = await get(VIP.e, ePorts.sticky, '/', cookie(who));
      expect(memberOf(reply)).toBe(who);
      expect(reply.headers['set-cookie']).toBeUndefined();
    }
    const moved = await get(VIP.e, ePorts.sticky, '/', cookie('maint-1'));
    expect(memberOf(moved)).toBe('ready-1');
    expect(moved.headers['set-cookie']).toEqual(fresh.headers['set-cookie']);
  });

  it('with source persistence, keeps each client address on one member, and spreads the addresses', async () => {
    const seen = new Set<string>();
    for (let client = 1; client <= 8; client++) {
      const members = new Set<string>();
      for (let i = 0; i < 4; i++)
        members.add(memberOf(await get(VIP.e, ePorts.source, '/', {}, { localAddress: `127.0.0.${client}` })));
      expect([...members], `client 127.0.0.${client}`).toHaveLength(1);
      seen.add([...members][0]!);
    }
    expect([...seen].sort()).toEqual(['w-1', 'w-3']);
  });

  it('when a pool has no member, then its VIP answers 503; the first member, pushed through the channel, is served with no reload', async () => {
    expect((await get(VIP.e, ePorts.empty, '/')).status).toBe(503);
    const entry = renderedEntries().find((e) => e.upstream === 't_e_empty')!.value as NginxUpstream;
    expect(entry.peers).toEqual([]);
    const late = backends.get('late-1')!;
    const value: NginxUpstream = {
      ...entry,
      peers: [
        {
          name: 'late-1',
          address: '127.0.0.1',
          port: late.port,
          weight: 100,
          admin: 'ready',
          backup: false,
          cookie: null,
        },
      ],
    };
    const pushed = await channelCall('POST', '/switchyard/v1/state', {
      complete: false,
      upstreams: { t_e_empty: versioned(value, 2) },
      caps: {},
    });
    expect(pushed.status, pushed.text).toBe(200);
    expect(pushed.body as PushReply).toEqual({ applied: 1, stale: [], failed: [] });
    // Nothing here reloads nginx: the running nginx.conf already routes the VIP to the upstream.
    expect(memberOf(await get(VIP.e, ePorts.empty, '/'))).toBe('late-1');
  });

  it('when a member fails its active health check, then it gets no requests until it passes again', async () => {
    const h2 = backends.get('h-2')!;
    const health = async () => (await stats()).peers['t_e_checked/h-2'];
    await vi.waitFor(async () => expect((await health())?.health).toBe('up'), { timeout: 10_000, interval: 50 });
    expect(Object.keys(await tally('checked', 20)).sort()).toEqual(['h-1', 'h-2']);
    h2.healthStatus = 503;
    try {
      await vi.waitFor(async () => expect(await health()).toMatchObject({ health: 'down', lastCheck: 'HTTP 503' }), {
        timeout: 10_000,
        interval: 50,
      });
      // h-2 still answers any request it gets: only the check keeps them away.
      expect(await tally('checked', 20)).toEqual({ 'h-1': 20 });
    } finally {
      h2.healthStatus = 200;
    }
    await vi.waitFor(async () => expect((await health())?.health).toBe('up'), { timeout: 10_000, interval: 50 });
    expect(Object.keys(await tally('checked', 20)).sort()).toEqual(['h-1', 'h-2']);
  });

  it('terminates TLS with the tenant certificate, re-encrypts to the TLS member it verified, and tells the member it did', async () => {
    const fingerprint = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect(
        { host: VIP.b, port: ports.b, servername: HOST_B, ca: certificate.chainPem, timeout: 5000 },
        () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.end();
        },
      );
      socket.on('error', reject);
    });
    expect(fingerprint).toBe(certificate.fingerprintSha256);
    const reply = await new Promise<Reply>((resolve, reject) => {
      const req = https.request(
        {
          host: VIP.b,
          port: ports.b,
          path: '/secure',
          servername: HOST_B,
          headers: { host: HOST_B },
          ca: certificate.chainPem,
          agent: false,
          timeout: 5000,
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, localPort: 0 }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(reply.status).toBe(200);
    const seen = JSON.parse(reply.body) as { member: string; headers: Record<string, string>; servername: string };
    expect(seen.member).toBe('secure-1');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.servername).toBe('api.b.internal');
  });

  it('passes bytes both ways through the TCP VIP', async () => {
    const payload = randomBytes(256 * 1024);
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let received = 0;
      const socket = net.connect({ host: VIP.c, port: ports.c }, () => socket.write(payload));
      socket.setTimeout(5000, () => socket.destroy(new Error('echo timed out')));
      socket.on('data', (chunk) => {
        chunks.push(chunk);
        received += chunk.length;
        if (received >= payload.length) socket.end();
      });
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
    });
    expect(echoed.equals(payload)).toBe(true);
  });

  it('refuses sources outside the allowlist before they can spend the tenant rate', async () => {
    for (let i = 0; i < 30; i++) {
      expect((await get(VIP.d, ports.d, '/', {}, { localAddress: '127.0.0.2' })).status).toBe(403);
    }
    expect((await get(VIP.d, ports.d, '/', {}, { localAddress: '127.0.0.3' })).status).toBe(403);
    const allowed = await get(VIP.d, ports.d, '/', {}, { localAddress: '127.0.0.1' });
    expect(allowed.status).toBe(200);
    expect(memberOf(allowed)).toBe('small-1');
  });

  it('answers 429 once the tenant exceeds its request rate, and keeps admitting the rate', async () => {
    // A sliding second, counted from admitted requests only: start from an empty one.
    await vi.waitFor(async () => expect((await stats()).tenants.d?.requestsPerSecond ?? 0).toBe(0), {
      timeout: 5000,
      interval: 100,
    });
    const started = Date.now();
    const answers: { status: number; at: number }[] = [];
    while (Date.now() - started < 2500 && answers.length < 5000) {
      const { status } = await get(VIP.d, ports.d, '/', {}, { localAddress: '127.0.0.1' });
      answers.push({ status, at: Date.now() - started });
    }
    const elapsedS = (Date.now() - started) / 1000;
    expect(answers.slice(0, 2).map((a) => a.status)).toEqual([200, 200]);
    expect(answers[2]?.status).toBe(429);
    expect(answers.every((a) => a.status === 200 || a.status === 429)).toBe(true);
    const served = answers.filter((a) => a.status === 200);
    // Two in the first (partial) second, then two per second: never more than the rate and its first burst.
    expect(served.length).toBeGreaterThanOrEqual(Math.floor(2 * elapsedS) - 2);
    expect(served.length).toBeLessThanOrEqual(Math.ceil(2 * elapsedS) + 2);
    expect(served.some((a) => a.at > elapsedS * 1000 - 1000)).toBe(true);
  });

  it('holds a request over the tenant connection cap until the one in flight ends, then serves it', async () => {
    const slow = backends.get('slow-1')!;
    const first = get(VIP.f, ports.f, '/hold');
    await vi.waitFor(() => expect(slow.held).toHaveLength(1), { timeout: 5000, interval: 10 });
    // Over the cap of one: it waits for the slot (up to caps.lua's SLOT_QUEUE_S before a 503).
    let answered = false;
    const second = get(VIP.f, ports.f, '/').finally(() => (answered = true));
    await new Promise((r) => setTimeout(r, 500));
    expect(answered).toBe(false);
    expect((await stats()).tenants.f?.active).toBe(1);
    slow.held
      .shift()!
      .writeHead(200, { 'x-member': 'slow-1' })
      .end(JSON.stringify({ member: 'slow-1' }));
    expect(memberOf(await first)).toBe('slow-1');
    expect(memberOf(await second)).toBe('slow-1');
    await vi.waitFor(async () => expect((await stats()).tenants.f?.active).toBe(0), { timeout: 5000, interval: 20 });
  });
});
