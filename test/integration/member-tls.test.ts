import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCaBundle } from '../../src/domain/ca-bundle.js';
import { parseCertificateBundle } from '../../src/domain/certificate.js';
import type { NodeKind } from '../../src/domain/node.js';
import type { NodeSnapshot, PoolSnapshot, TenantSnapshot, VipSnapshot } from '../../src/domain/snapshot.js';
import { renderHaproxy } from '../../src/render/haproxy.js';
import { HAPROXY_FILES } from '../../src/render/haproxy-names.js';
import { renderNginx } from '../../src/render/nginx.js';
import { validateHaproxySnapshot } from '../../src/render/validate-haproxy.js';
import { validateNginx } from '../../src/render/validate-nginx.js';
import { pool, vip } from '../fixtures/seed-snapshot.js';
import { TestPki, type Issued } from '../support/openssl.js';
import {
  eventually,
  freePort,
  httpMember,
  request,
  showStat,
  startHaproxy,
  type Closable,
  type HttpAnswer,
  type RunningHaproxy,
} from './haproxy-render-support.js';

/**
 * TLS to pool members through a real HAProxy and a real NGINX on loopback, in front of node
 * HTTPS members whose certificates come from a throw-away PKI: one pool per case, each behind an
 * HTTP VIP of its own. What a member saw (its SNI, the client certificate) comes back in the body.
 */
const FAST_CHECK = { intervalMs: 300, timeoutMs: 200, rise: 1, fall: 1 };
const MEMBER_HOST = 'api.t.internal';
/** A member with one certificate for both names, for the SNI taken from the request's Host. */
const HOST_NAMES = ['app.t.example', 'shop.t.example'];

interface Case {
  readonly pool: string;
  readonly tls: Record<string, unknown>;
  readonly member: string;
  readonly check?: Record<string, unknown>;
}

/** Each case is a pool of one member behind its own VIP. */
const CASES: Case[] = [
  {
    pool: 'verified',
    tls: { caBundle: 'members', sni: { from: 'fixed', name: MEMBER_HOST } },
    member: 'good',
    check: { type: 'https', path: '/healthz' },
  },
  { pool: 'rogue', tls: { caBundle: 'members', sni: { from: 'fixed', name: MEMBER_HOST } }, member: 'rogue' },
  {
    pool: 'rogue-checked',
    tls: { caBundle: 'members', sni: { from: 'fixed', name: MEMBER_HOST } },
    member: 'rogue',
    check: { type: 'https', path: '/healthz' },
  },
  {
    pool: 'wrong-name',
    tls: { caBundle: 'members', sni: { from: 'fixed', name: 'other.t.internal' } },
    member: 'good',
  },
  { pool: 'from-host', tls: { caBundle: 'members', sni: { from: 'host' } }, member: 'multi' },
  {
    pool: 'mtls',
    tls: { caBundle: 'members', sni: { from: 'fixed', name: MEMBER_HOST }, clientCertificate: 'client' },
    member: 'strict',
  },
  { pool: 'no-client-cert', tls: { caBundle: 'members', sni: { from: 'fixed', name: MEMBER_HOST } }, member: 'strict' },
  { pool: 'unverified', tls: { verify: 'none' }, member: 'rogue' },
  {
    pool: 'plain-member',
    tls: { caBundle: 'members', sni: { from: 'fixed', name: MEMBER_HOST } },
    member: 'plain',
    check: { type: 'https', path: '/healthz' },
  },
];

let pki: TestPki;
let membersCa: Issued;
let clientCert: Issued;
const servers: Closable[] = [];
const memberEndpoints = new Map<string, { address: string; port: number }>();

async function startMembers(): Promise<void> {
  membersCa = await pki.root('Members CA');
  const rogueCa = await pki.root('Rogue CA');
  const clientCa = await pki.root('Client CA');
  clientCert = await pki.issue('proxy.t.internal', clientCa, { sans: ['DNS:proxy.t.internal'] });
  const good = await pki.issue(MEMBER_HOST, membersCa, { sans: [`DNS:${MEMBER_HOST}`] });
  const rogue = await pki.issue(MEMBER_HOST, rogueCa, { sans: [`DNS:${MEMBER_HOST}`] });
  const multi = await pki.issue(HOST_NAMES[0]!, membersCa, { sans: HOST_NAMES.map((h) => `DNS:${h}`) });
  const members: [string, string, Parameters<typeof httpMember>[3]][] = [
    ['good', '127.0.5.11', { cert: good.cert, key: good.key }],
    ['rogue', '127.0.5.12', { cert: rogue.cert, key: rogue.key }],
    ['multi', '127.0.5.13', { cert: multi.cert, key: multi.key }],
    ['strict', '127.0.5.14', { cert: good.cert, key: good.key, clientCa: clientCa.cert }],
    ['plain', '127.0.5.15', undefined],
  ];
  for (const [name, address, secure] of members) {
    const member = await httpMember(name, address, 0, secure);
    servers.push(member);
    memberEndpoints.set(name, { address, port: member.port });
  }
}

/** One node's snapshot: the tenant's pools and one HTTP VIP per pool on `address`, ports from `ports`. */
function snapshot(
  kind: NodeKind,
  configDir: string,
  address: string,
  ports: ReadonlyMap<string, number>,
): NodeSnapshot {
  const client = parseCertificateBundle(clientCert.cert, clientCert.key, new Date());
  const pools: PoolSnapshot[] = CASES.map((c) => {
    const healthCheck = c.check === undefined ? null : { ...c.check, ...FAST_CHECK };
    return pool({ name: c.pool, healthCheck, tls: c.tls }, [
      { name: `${c.member}-1`, ...memberEndpoints.get(c.member)! },
    ]);
  });
  const vips: VipSnapshot[] = CASES.map((c) =>
    vip({ name: c.pool, address, port: ports.get(c.pool)!, protocol: 'http', defaultPool: c.pool }),
  );
  const tenant: TenantSnapshot = {
    id: 't',
    vips,
    pools,
    certificates: [{ name: 'client', chainPem: client.chainPem, keyPem: client.keyPem, sans: client.sans }],
    caBundles: [{ name: 'members', pem: parseCaBundle(membersCa.cert, new Date()).pem }],
    allocation: { maxConnections: 1000, requestsPerSecond: 10_000 },
  };
  return {
    revision: 1,
    node: {
      name: `edge-${kind}`,
      kind,
      runtimeAddress: kind === 'haproxy' ? { host: '127.0.0.1', port: ports.get('runtime')! } : null,
      masterAddress: null,
      runtimeTls: null,
      socketDir: configDir,
      capacity: { vcpu: 2, memoryMb: 1024 },
      configDir,
    },
    tenants: [tenant],
  };
}

async function freePorts(address: string): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  for (const c of CASES) ports.set(c.pool, await freePort(address));
  ports.set('runtime', await freePort('127.0.0.1'));
  return ports;
}

function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content, {
      mode: name.endsWith('.key') || name.includes('/client/') ? 0o600 : 0o644,
    });
  }
}

interface Proxy {
  readonly address: string;
  readonly ports: Map<string, number>;
  get(pool: string, host?: string): Promise<HttpAnswer>;
}

function proxyAt(address: string, ports: Map<string, number>): Proxy {
  return {
    address,
    ports,
    get: (pool, host = 'client.t.example') =>
      request({ host: address, port: ports.get(pool)!, path: '/who', headers: { host } }, 5000),
  };
}

const body = (a: HttpAnswer): Record<string, unknown> => JSON.parse(a.body) as Record<string, unknown>;

let haproxyDir: string;
let nginxDir: string;
let haproxy: RunningHaproxy | undefined;
let nginx: ChildProcess | undefined;
let viaHaproxy: Proxy;
let viaNginx: Proxy;

async function serverStatus(pool: string): Promise<{ status: string; check: string }> {
  const row = (await showStat(join(haproxyDir, 'admin.sock'))).find(
    (r) => r.pxname === `be_t_${pool}` && r.svname !== 'BACKEND',
  );
  // `show stat` marks a check that is running right now with a leading "* " (e.g. "* L6RSP").
  return { status: row?.status ?? 'missing', check: (row?.check_status ?? '').replace(/^\* /, '') };
}

beforeAll(async () => {
  pki = await TestPki.create();
  await startMembers();

  haproxyDir = mkdtempSync(join(tmpdir(), 'switchyard-member-tls-haproxy-'));
  viaHaproxy = proxyAt('127.0.6.1', await freePorts('127.0.6.1'));
  const hSnapshot = snapshot('haproxy', haproxyDir, viaHaproxy.address, viaHaproxy.ports);
  expect(await validateHaproxySnapshot(hSnapshot)).toMatchObject({ ok: true });
  const hFiles = renderHaproxy(hSnapshot);
  writeFiles(haproxyDir, { ...hFiles, [HAPROXY_FILES.serverState]: '1\n' });
  haproxy = startHaproxy(join(haproxyDir, HAPROXY_FILES.config));

  nginxDir = mkdtempSync(join(tmpdir(), 'switchyard-member-tls-nginx-'));
  chmodSync(nginxDir, 0o755); // nginx workers create their temp files in here
  viaNginx = proxyAt('127.0.6.2', await freePorts('127.0.6.2'));
  const nFiles = renderNginx(snapshot('nginx', nginxDir, viaNginx.address, viaNginx.ports));
  expect(await validateNginx(nFiles, nginxDir)).toEqual({ ok: true, warnings: [] });
  writeFiles(nginxDir, nFiles);
  nginx = spawn('nginx', ['-c', join(nginxDir, 'nginx.conf'), '-p', `${nginxDir}/`, '-g', 'daemon off;'], {
    stdio: 'ignore',
  });

  const running = haproxy;
  await eventually(
    'both proxies to serve the verified pool',
    async () => {
      const [h, n] = await Promise.all([viaHaproxy.get('verified'), viaNginx.get('verified')]);
      return h.status === 200 && n.status === 200 ? true : undefined;
    },
    15_000,
  ).catch((error: Error) => {
    throw new Error(
      `${error.message}\nhaproxy said:\n${running.output()}\nnginx said:\n${safeRead(join(nginxDir, 'error.log'))}`,
    );
  });
}, 60_000);

afterAll(async () => {
  await haproxy?.stop();
  const child = nginx;
  if (child !== undefined && child.exitCode === null && child.pid !== undefined) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await Promise.all(servers.map((s) => s.close()));
  for (const dir of [haproxyDir, nginxDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  await pki?.dispose();
});

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-3000);
  } catch {
    return '(no error log)';
  }
}

/** A request the proxy could not complete to its member: HAProxy answers 503 (no usable server), NGINX 502. */
const FAILED = [502, 503];

describe.each([
  ['HAProxy', () => viaHaproxy],
  ['NGINX', () => viaNginx],
])('TLS to members through %s', (_name, proxy) => {
  it("reaches a member whose certificate the tenant's CA signed, with the pool's SNI", async () => {
    const answer = await proxy().get('verified');
    expect(answer.status).toBe(200);
    expect(body(answer)).toMatchObject({ member: 'good', servername: MEMBER_HOST, client: null });
  });

  it('refuses a member whose certificate another CA signed, and one whose certificate names another host', async () => {
    expect(FAILED).toContain((await proxy().get('rogue')).status);
    expect(FAILED).toContain((await proxy().get('wrong-name')).status);
  });

  it("sends the request's Host (without its port) as SNI and verifies the member against it", async () => {
    for (const host of HOST_NAMES) {
      const answer = await proxy().get('from-host', `${host}:8080`);
      expect(answer.status, host).toBe(200);
      expect(body(answer).servername).toBe(host);
    }
    expect(FAILED).toContain((await proxy().get('from-host', 'evil.t.example')).status);
  });

  it("shows the tenant's client certificate to a member that requires one (mTLS), and fails without it", async () => {
    const answer = await proxy().get('mtls');
    expect(answer.status).toBe(200);
    expect(body(answer)).toMatchObject({ member: 'strict', client: 'proxy.t.internal' });
    expect(FAILED).toContain((await proxy().get('no-client-cert')).status);
  });

  it('with verify none, chosen explicitly, reaches a member no CA of the tenant signed', async () => {
    const answer = await proxy().get('unverified');
    expect(answer.status).toBe(200);
    expect(body(answer)).toMatchObject({ member: 'rogue' });
  });
});

describe('HTTPS health checks of TLS members on HAProxy', () => {
  it('marks UP a member that verifies, and DOWN one that does not: the check verifies as traffic does', async () => {
    await eventually(
      'the checks to settle',
      async () => {
        const [good, rogue] = await Promise.all([serverStatus('verified'), serverStatus('rogue-checked')]);
        return good.status === 'UP' && rogue.status === 'DOWN' ? true : undefined;
      },
      10_000,
    );
    expect((await serverStatus('verified')).check).toBe('L7OK');
    expect((await serverStatus('rogue-checked')).check).toMatch(/^L6/);
    expect((await viaHaproxy.get('rogue-checked')).status).toBe(503);
  });

  it('marks DOWN a member that answers plain HTTP where TLS was declared, rather than UP while requests fail', async () => {
    await eventually(
      'the plain member to be DOWN',
      async () => ((await serverStatus('plain-member')).status === 'DOWN' ? true : undefined),
      10_000,
    );
    expect((await viaHaproxy.get('plain-member')).status).toBe(503);
  });
});
