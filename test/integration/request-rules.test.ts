import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeKind } from '../../src/domain/node.js';
import type { NodeSnapshot } from '../../src/domain/snapshot.js';
import { HAPROXY_FILES } from '../../src/render/haproxy-names.js';
import { renderHaproxy } from '../../src/render/haproxy.js';
import { renderNginx } from '../../src/render/nginx.js';
import { validateHaproxySnapshot } from '../../src/render/validate-haproxy.js';
import { validateNginx } from '../../src/render/validate-nginx.js';
import { pool, seedCertificate, vip } from '../fixtures/seed-snapshot.js';
import { startNginx, type ProxyProcess } from './agent-support.js';
import {
  eventually,
  freePort,
  httpMember,
  startHaproxy,
  type Closable,
  type RunningHaproxy,
} from './haproxy-render-support.js';

/**
 * One request matrix sent through a real HAProxy and a real NGINX rendered from the same tenant:
 * for every path and Host, the same pool answers on both (or both refuse, with the same status),
 * and it is the one docs/rendering.md documents. Requests go out byte for byte on a
 * raw socket, so no client normalises the path first. Then HAProxy's persistence cookie: opaque,
 * and still valid after the configuration is rendered again and HAProxy restarted.
 * Only 127.0.0.0/8; every wait is bounded; only the processes started here are stopped, by PID.
 */
const ADDRESS: Record<NodeKind, string> = { haproxy: '127.0.0.121', nginx: '127.0.0.122' };
const MEMBER_ADDRESS = '127.0.9.11';
const HOST = 'www.m.example';
/** An HTTPS VIP beside it, for HTTP/2, where the Host comes as `:authority`. */
const CERT = seedCertificate('tls');
const TLS_HOST = 'b.example.com';

let root: string;
const ports: Record<NodeKind, number> = { haproxy: 0, nginx: 0 };
const tlsPorts: Record<NodeKind, number> = { haproxy: 0, nginx: 0 };
const members = new Map<string, Closable & { port: number }>();
let haproxy: RunningHaproxy | undefined;
let nginx: ProxyProcess | undefined;

function snapshot(kind: NodeKind, configDir: string): NodeSnapshot {
  const at = (name: string) => ({ name, address: MEMBER_ADDRESS, port: members.get(name)!.port });
  return {
    revision: 1,
    node: { name: `rules-${kind}`, kind, runtimeAddress: null, capacity: { vcpu: 4, memoryMb: 8192 }, configDir },
    tenants: [
      {
        id: 'm',
        vips: [
          vip(
            {
              name: 'www',
              address: ADDRESS[kind],
              port: ports[kind],
              protocol: 'http',
              hostnames: [HOST, '*.cdn.m.example'],
              persistence: 'cookie',
              defaultPool: 'web',
            },
            [
              { name: 'api', priority: 10, match: { pathPrefix: '/api' }, pool: 'api' },
              { name: 'admin', priority: 10, match: { pathPrefix: '/admin' }, pool: 'admin' },
              { name: 'static', priority: 10, match: { pathPrefix: '/static/' }, pool: 'api' },
              { name: 'api-host', priority: 20, match: { host: 'api.m.example' }, pool: 'api' },
            ],
          ),
          vip({
            name: 'tls',
            address: ADDRESS[kind],
            port: tlsPorts[kind],
            protocol: 'https',
            hostnames: [TLS_HOST],
            certificate: 'tls',
            defaultPool: 'web',
          }),
        ],
        pools: [
          pool({ name: 'web' }, ['web-1', 'web-2', 'web-3'].map(at)),
          pool({ name: 'api' }, [at('api-1')]),
          pool({ name: 'admin' }, [at('admin-1')]),
        ],
        certificates: [{ name: CERT.name, chainPem: CERT.chainPem, keyPem: CERT.keyPem, sans: CERT.sans }],
        allocation: { maxConnections: 2000, requestsPerSecond: 100_000, connectionLimit: 2000 },
      },
    ],
  };
}

interface Answer {
  readonly status: number;
  /** The member that answered (`x-member`), or null when the proxy answered itself. */
  readonly member: string | null;
  readonly setCookie: string | null;
}

/** One request exactly as written (request line and headers), on its own connection. */
function send(kind: NodeKind, requestLine: string, headers: readonly string[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: ADDRESS[kind], port: ports[kind] }, () => {
      socket.write(`${requestLine}\r\n${[...headers, 'Connection: close'].join('\r\n')}\r\n\r\n`);
    });
    let raw = '';
    socket.setTimeout(3000, () => socket.destroy(new Error(`${kind}: ${requestLine} timed out`)));
    socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const head = raw.split('\r\n\r\n')[0]!.split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
      const header = (name: string) =>
        head
          .find((l) => l.toLowerCase().startsWith(`${name}:`))
          ?.slice(name.length + 1)
          .trim() ?? null;
      resolve({ status, member: header('x-member'), setCookie: header('set-cookie') });
    });
  });
}

const get = (kind: NodeKind, path: string, host: string | null = HOST, extra: readonly string[] = []) =>
  send(kind, `GET ${path} HTTP/1.1`, [...(host === null ? [] : [`Host: ${host}`]), ...extra]);

/** What a request reached: the pool of the member that answered, or the proxy's own status. */
function outcome(a: Answer): string {
  if (a.member !== null) return a.member.replace(/-\d+$/, '');
  return String(a.status);
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
  }
}

async function startHaproxyNode(): Promise<RunningHaproxy> {
  const dir = join(root, 'haproxy');
  const node = snapshot('haproxy', dir);
  expect(await validateHaproxySnapshot(node)).toMatchObject({ ok: true });
  await writeFiles(dir, { ...renderHaproxy(node), [HAPROXY_FILES.serverState]: '1\n' });
  const running = startHaproxy(join(dir, HAPROXY_FILES.config));
  await eventually(
    'haproxy serving',
    async () => ((await get('haproxy', '/').catch(() => null))?.status === 200 ? true : undefined),
    10_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${running.output()}`);
  });
  return running;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-request-rules-'));
  // nginx workers run as an unprivileged user and create their temp files in here.
  chmodSync(root, 0o755);
  for (const name of ['web-1', 'web-2', 'web-3', 'api-1', 'admin-1'])
    members.set(name, await httpMember(name, MEMBER_ADDRESS));
  ports.haproxy = await freePort(ADDRESS.haproxy);
  ports.nginx = await freePort(ADDRESS.nginx);
  tlsPorts.haproxy = await freePort(ADDRESS.haproxy);
  tlsPorts.nginx = await freePort(ADDRESS.nginx);

  haproxy = await startHaproxyNode();
  const nginxDir = join(root, 'nginx');
  mkdirSync(nginxDir, { mode: 0o755 });
  const files = renderNginx(snapshot('nginx', nginxDir));
  expect(await validateNginx(files, nginxDir)).toEqual({ ok: true, warnings: [] });
  await writeFiles(nginxDir, files);
  nginx = startNginx(nginxDir);
  await eventually(
    'nginx serving',
    async () => ((await get('nginx', '/').catch(() => null))?.status === 200 ? true : undefined),
    10_000,
  );
}, 60_000);

afterAll(async () => {
  await haproxy?.stop();
  await nginx?.stop();
  for (const m of members.values()) await m.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Path → what answers on both proxies (Host www.m.example). docs/rendering.md says why. */
const PATHS: readonly (readonly [string, string])[] = [
  ['/api', 'api'],
  ['/api/', 'api'],
  ['/api/x', 'api'],
  ['/api?x=1', 'api'],
  ['/apix', 'web'],
  ['/API', 'web'],
  ['//api/x', 'web'],
  ['/admin', 'admin'],
  ['/admin/users', 'admin'],
  ['/admin%2Fusers', 'web'],
  ['/static', 'web'],
  ['/static/app.js', 'api'],
  ['/%61pi/x', '400'],
  ['/%61dmin', '400'],
  ['/%2e%2e/admin', '400'],
  ['/api/../admin', '400'],
  ['/api/./x', '400'],
  ['/x/..', '400'],
  ['/api%00', '400'],
  ['/api%zz', '400'],
  ['/a%20b', 'web'],
];

/** Host → what answers on both proxies (path /). */
const HOSTS: readonly (readonly [string | null, string])[] = [
  [HOST, 'web'],
  ['WWW.M.Example:8080', 'web'],
  [`${HOST}.`, 'web'],
  ['x.cdn.m.example', 'web'],
  ['x.y.cdn.m.example', '421'],
  ['cdn.m.example', '421'],
  ['api.m.example', 'api'],
  ['www.other.example', '421'],
  ['127.0.0.121', '421'],
];

describe('one request matrix through HAProxy and NGINX', () => {
  it('every path reaches the same pool on both, by whole segments of the path as sent, and ambiguous paths are refused on both', async () => {
    for (const [path, expected] of PATHS) {
      const [h, n] = [outcome(await get('haproxy', path)), outcome(await get('nginx', path))];
      expect(`${path} → haproxy ${h}, nginx ${n}`).toBe(`${path} → haproxy ${expected}, nginx ${expected}`);
    }
  });

  it('a VIP with hostnames answers its names and its routes’ hosts, and 421 for any other Host, on both', async () => {
    for (const [host, expected] of HOSTS) {
      const [h, n] = [outcome(await get('haproxy', '/', host)), outcome(await get('nginx', '/', host))];
      expect(`${host} → haproxy ${h}, nginx ${n}`).toBe(`${host} → haproxy ${expected}, nginx ${expected}`);
    }
    // HTTP/1.0 without a Host is served on both (NGINX takes the VIP's first name).
    const [h, n] = await Promise.all((['haproxy', 'nginx'] as const).map((kind) => send(kind, 'GET / HTTP/1.0', [])));
    expect([outcome(h!), outcome(n!)]).toEqual(['web', 'web']);
  });

  it('a refused request reaches no member: the members saw only what the proxies let through', async () => {
    // A request that reached a member carries x-member; the 400s and 421s above carried none.
    for (const kind of ['haproxy', 'nginx'] as const) {
      const refused = await get(kind, '/%61dmin');
      expect(refused).toMatchObject({ status: 400, member: null });
      const unknown = await get(kind, '/admin', 'www.other.example');
      expect(unknown).toMatchObject({ status: 421, member: null });
    }
  });
});

/** One HTTP/2 request over TLS (SNI b.example.com) whose `:authority` is `authority`. */
function getH2(kind: NodeKind, authority: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${ADDRESS[kind]}:${tlsPorts[kind]}`, {
      ca: CERT.chainPem,
      servername: TLS_HOST,
    });
    const timer = setTimeout(() => session.destroy(new Error(`${kind}: HTTP/2 request timed out`)), 3000);
    session.on('error', reject);
    const req = session.request({ ':path': '/', ':authority': authority });
    req.on('response', (headers) => {
      req.resume();
      req.on('end', () => {
        clearTimeout(timer);
        session.close();
        const member = headers['x-member'];
        resolve({
          status: Number(headers[':status']),
          member: typeof member === 'string' ? member : null,
          setCookie: null,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hostnames over HTTP/2', () => {
  it('a name the VIP answers is served and any other is 421 on both, with the Host taken from :authority', async () => {
    for (const kind of ['haproxy', 'nginx'] as const) {
      expect(outcome(await getH2(kind, TLS_HOST)), kind).toBe('web');
      expect(outcome(await getH2(kind, `${TLS_HOST}:443`)), kind).toBe('web');
      expect(outcome(await getH2(kind, 'www.other.example')), kind).toBe('421');
    }
  });
});

describe('HAProxy cookie persistence', () => {
  it('sets an opaque cookie, never a member name, that keeps the client on its member across a new render and a restart', async () => {
    const first = await get('haproxy', '/');
    const cookie = first.setCookie!.split(';')[0]!;
    const [name, value] = cookie.split('=');
    expect(name).toBe('SRVID');
    expect(value).toMatch(/^[0-9a-f]{16}$/);
    for (const member of members.keys()) expect(first.setCookie).not.toContain(member);
    const pinned = first.member!;
    for (let i = 0; i < 10; i++) expect((await get('haproxy', '/', HOST, [`Cookie: ${cookie}`])).member).toBe(pinned);

    await haproxy!.stop();
    haproxy = await startHaproxyNode();
    for (let i = 0; i < 10; i++) expect((await get('haproxy', '/', HOST, [`Cookie: ${cookie}`])).member).toBe(pinned);
    // Each member has its own value: clients without the cookie are spread and each gets its member's.
    const values = new Map<string, string>();
    for (let i = 0; i < 12; i++) {
      const a = await get('haproxy', '/');
      values.set(a.member!, a.setCookie!.split(';')[0]!);
    }
    expect(values.size).toBe(3);
    expect(new Set(values.values()).size).toBe(3);
  });
});
