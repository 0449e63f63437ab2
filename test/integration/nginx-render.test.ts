import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseCertificateBundle, type ParsedCertificate } from '../../src/domain/certificate.js';
import type { NodeSnapshot, TenantSnapshot } from '../../src/domain/snapshot.js';
import { renderNginx } from '../../src/render/nginx.js';
import { validateNginx } from '../../src/render/validate-nginx.js';
import { pool, seedMemberCaBundle, seedMemberCertificate, vip } from '../fixtures/seed-snapshot.js';
import { makeCert } from '../support/certs.js';
import { freePort } from './haproxy-render-support.js';

/**
 * The seed scenario on real nginx, on loopback: tenant a (HTTP, cookie persistence, routes by
 * host, path and header), tenant b (HTTPS with its own certificate, generated here), tenant c
 * (TCP), and tenant d (HTTP with a low rate limit and a source allowlist), each VIP on its own
 * 127.0.0.x address and a free high port, in front of small node backends started here.
 * Only 127.0.0.0/8 is used; every loop is bounded; only the processes started here are stopped.
 */

interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: http.Server | net.Server;
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

const VIP = { a: '127.0.0.11', b: '127.0.0.12', c: '127.0.0.13', d: '127.0.0.14' } as const;
const HOST_B = 'b.example.test';

let dir: string;
let nginx: ChildProcess | null = null;
let certificate: ParsedCertificate;
const ports: Record<keyof typeof VIP, number> = { a: 0, b: 0, c: 0, d: 0 };
const backends = new Map<string, Backend>();

function listen<T extends net.Server>(server: T, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** A member that says who it is and what it was sent. */
async function httpBackend(name: string): Promise<Backend> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ member: name, url: req.url, headers: req.headers }));
  });
  const backend = { name, server, port: await listen(server, '127.0.0.1') };
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
  const backend = { name, server, port: await listen(server, '127.0.0.1') };
  backends.set(name, backend);
  return backend;
}

async function echoBackend(name: string): Promise<Backend> {
  const server = net.createServer((socket) => socket.pipe(socket));
  const backend = { name, server, port: await listen(server, '127.0.0.1') };
  backends.set(name, backend);
  return backend;
}

function member(name: string): Record<string, unknown> {
  return { name, address: '127.0.0.1', port: backends.get(name)!.port };
}

/** A fresh two-day certificate for HOST_B, as the control plane would have parsed it. */
function generateCertificate(): ParsedCertificate {
  const { certificate, privateKey } = makeCert(HOST_B, 2);
  return parseCertificateBundle(certificate, privateKey, new Date());
}

function scenario(configDir: string): NodeSnapshot {
  const web = pool(
    // fall 1: the first failed connection takes a member out for 5 s (passive check).
    {
      name: 'web',
      algorithm: 'roundrobin',
      healthCheck: { type: 'http', path: '/healthz', intervalMs: 5000, timeoutMs: 1000, fall: 1 },
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
  return {
    revision: 1,
    node: { name: 'edge-it', kind: 'nginx', runtimeAddress: null, capacity: { vcpu: 2, memoryMb: 1024 }, configDir },
    tenants: [a, b, c, d],
  };
}

function get(
  host: string,
  port: number,
  path: string,
  headers: Record<string, string> = {},
  options: { localAddress?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, headers, agent: false, timeout: 5000, ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${host}:${port}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const memberOf = (reply: Reply): string => (JSON.parse(reply.body) as { member: string }).member;

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
  await vi.waitFor(listening, { timeout: 5000, interval: 50 }).catch((err: unknown) => {
    throw new Error(`nothing listens on ${host}:${port} after 5 s: ${String(err)}`, { cause: err });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-nginx-it-'));
  // nginx workers run as an unprivileged user and create their temp files in here.
  chmodSync(dir, 0o755);
  certificate = generateCertificate();
  for (const name of ['web-1', 'web-2', 'api-1', 'beta-1', 'small-1']) await httpBackend(name);
  await httpsBackend('secure-1');
  await echoBackend('echo-1');
  for (const key of Object.keys(VIP) as (keyof typeof VIP)[]) ports[key] = await freePort(VIP[key]);

  const files = renderNginx(scenario(dir));
  expect(await validateNginx(files, dir)).toEqual({ ok: true, warnings: [] });
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
  }
  nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', `${dir}/`, '-g', 'daemon off;'], { stdio: 'ignore' });
  for (const key of Object.keys(VIP) as (keyof typeof VIP)[]) await waitUntilListening(VIP[key], ports[key]);
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
  for (const { server } of backends.values()) {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('nginx serving the rendered seed configuration', () => {
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

  it('keeps a client on one member with the persistence cookie it hands out', async () => {
    const first = await get(VIP.a, ports.a, '/', { host: 'www.example.test' });
    const cookie = String(first.headers['set-cookie']?.[0] ?? '');
    expect(cookie).toMatch(/^SRVID=[0-9a-f]{32}; Path=\/; HttpOnly$/);
    const pair = cookie.split(';')[0]!;
    const stuck = new Set<string>([memberOf(first)]);
    for (let i = 0; i < 15; i++) {
      const reply = await get(VIP.a, ports.a, '/', { host: 'www.example.test', cookie: `other=1; ${pair}` });
      expect(reply.headers['set-cookie']).toBeUndefined();
      stuck.add(memberOf(reply));
    }
    expect(stuck.size).toBe(1);
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
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
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

  it('answers 429 once the tenant exceeds its request rate, and keeps serving the rate', async () => {
    // 2 requests/s with one second's burst (2): back-to-back requests for two seconds run into the limit.
    const started = Date.now();
    const statuses: number[] = [];
    while (Date.now() - started < 2000 && statuses.length < 2000)
      statuses.push((await get(VIP.d, ports.d, '/', {}, { localAddress: '127.0.0.1' })).status);
    const elapsedS = (Date.now() - started) / 1000;
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const served = statuses.filter((s) => s === 200).length;
    expect(served).toBeGreaterThanOrEqual(2 + Math.floor(2 * elapsedS) - 1);
    expect(served).toBeLessThanOrEqual(2 + Math.ceil(2 * elapsedS) + 1);
  });

  it('takes a failed member out of rotation on its own (passive check)', async () => {
    const stopped = backends.get('web-2')!.server as http.Server;
    await new Promise<void>((resolve) => {
      stopped.close(() => resolve());
      stopped.closeAllConnections();
    });
    const served: string[] = [];
    for (let i = 0; i < 20; i++) {
      const reply = await get(VIP.a, ports.a, '/', { host: 'www.example.test' });
      expect(reply.status).toBe(200);
      served.push(memberOf(reply));
    }
    expect(new Set(served)).toEqual(new Set(['web-1']));
    expect(readFileSync(join(dir, 'error.log'), 'utf8')).toMatch(/upstream server temporarily disabled/);
  });
});
