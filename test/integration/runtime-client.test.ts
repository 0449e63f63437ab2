import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  delServer,
  getWeight,
  setServerAddr,
  setServerMaxconn,
  setServerWeight,
} from '../../src/fleet/runtime-api/commands/server-commands.js';
import { showInfo } from '../../src/fleet/runtime-api/commands/stat-commands.js';
import { OneShotRuntimeClient } from '../../src/fleet/runtime-api/one-shot-runtime-client.js';
import { createMasterApi, createRuntimeApi, type RuntimeApi } from '../../src/fleet/runtime-api/runtime-api.js';
import { RuntimeClient } from '../../src/fleet/runtime-api/runtime-client.js';
import { RuntimeCommandError } from '../../src/fleet/runtime-api/runtime-executor.js';
import { freePort } from './haproxy-render-support.js';

/**
 * The Runtime API client against a real HAProxy 2.6 (master-worker, TCP and unix stats sockets)
 * in front of small node HTTP members, all on loopback. Every wait is bounded; afterAll stops only
 * the processes this file started, by PID.
 */

const HOST = '127.0.0.1';
const run = promisify(execFile);

interface Member {
  readonly name: string;
  readonly port: number;
  readonly server: http.Server;
}

let dir: string;
let haproxy: ChildProcess;
let haproxyLog = '';
const members: Member[] = [];
const ports = { http: 0, https: 0, stats: 0 };
let tcp: RuntimeClient;
let unix: RuntimeClient;
let api: RuntimeApi;

async function member(name: string): Promise<Member> {
  const server = http.createServer(
    (_req, res) => void res.writeHead(200, { 'x-member': name, connection: 'close' }).end(name),
  );
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const m = { name, port: (server.address() as net.AddressInfo).port, server };
  members.push(m);
  return m;
}

/** A self-signed EC certificate and key as one PEM, the way a `crt` file holds them. */
async function selfSigned(cn: string): Promise<string> {
  const key = join(dir, `${cn}.key`);
  const crt = join(dir, `${cn}.crt`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    crt,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
  ]);
  return `${await readFile(crt, 'utf8')}${await readFile(key, 'utf8')}`;
}

/** One plain HTTP request through the HAProxy frontend; answers the member that served it. */
function request(host: string): Promise<{ status: number; member: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: HOST, port: ports.http, path: '/', headers: { host }, agent: false, timeout: 2000 },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, member: body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

function servedCertificate(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: HOST, port: ports.https, rejectUnauthorized: false, servername: 'app.test', timeout: 2000 },
      () => {
        const cn = socket.getPeerCertificate().subject?.CN;
        socket.destroy();
        resolve(String(cn));
      },
    );
    socket.on('timeout', () => socket.destroy(new Error('TLS handshake timed out')));
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-runtime-'));
  const [m1, m2, m3, alt] = [await member('m1'), await member('m2'), await member('m3'), await member('alt1')];
  ports.http = await freePort(HOST);
  ports.https = await freePort(HOST);
  ports.stats = await freePort(HOST);
  await writeFile(join(dir, 'site.pem'), await selfSigned('old.test'));
  await writeFile(join(dir, 'hosts.map'), 'alt.test be_alt\n');
  await writeFile(join(dir, 'rl.map'), 't1 100\n');
  await writeFile(
    join(dir, 'haproxy.cfg'),
    [
      'global',
      `  stats socket ipv4@${HOST}:${ports.stats} level admin`,
      `  stats socket ${dir}/admin.sock mode 600 level admin`,
      '  stats timeout 30s',
      '  maxconn 1000',
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 5s',
      '  timeout server 5s',
      'frontend fe_main',
      `  bind ${HOST}:${ports.http}`,
      '  maxconn 200',
      `  http-request set-var(txn.limit) str(t1),map(${dir}/rl.map,1000000)`,
      `  use_backend %[req.hdr(host),lower,field(1,:),map(${dir}/hosts.map,be_app)]`,
      'frontend fe_tls',
      `  bind ${HOST}:${ports.https} ssl crt ${dir}/site.pem`,
      '  default_backend be_app',
      'backend be_app',
      '  balance roundrobin',
      '  option httpchk GET /',
      `  server m1 ${HOST}:${m1!.port} weight 10 check inter 200`,
      `  server m2 ${HOST}:${m2!.port} weight 10 check inter 200`,
      `  server m3 ${HOST}:${m3!.port} weight 10`,
      'backend be_alt',
      '  balance roundrobin',
      `  server a1 ${HOST}:${alt!.port}`,
      '',
    ].join('\n'),
  );
  haproxy = spawn('haproxy', ['-W', '-db', '-S', `${dir}/master.sock`, '-f', join(dir, 'haproxy.cfg')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  haproxy.stdout!.on('data', (c) => (haproxyLog += c));
  haproxy.stderr!.on('data', (c) => (haproxyLog += c));

  tcp = new RuntimeClient(
    { host: HOST, port: ports.stats },
    { connectAttempts: 1, backoff: { initialMs: 50, maxMs: 200 } },
  );
  unix = new RuntimeClient({ path: join(dir, 'admin.sock') });
  api = createRuntimeApi(tcp);
  // vi.waitFor, not expect.poll: this is a hook, not a test.
  await vi
    .waitFor(async () => expect((await tcp.execute([showInfo()]))[0]!.status).toBe('ok'), {
      timeout: 5000,
      interval: 100,
    })
    .catch((err: unknown) => {
      throw new Error(`haproxy did not start:\n${haproxyLog}`, { cause: err });
    });
});

afterAll(async () => {
  await tcp?.close();
  await unix?.close();
  const running = (): boolean => haproxy?.pid !== undefined && haproxy.exitCode === null && haproxy.signalCode === null;
  if (running()) {
    // SIGTERM to the master stops its workers too; only our own PID is signalled.
    const exited = new Promise((resolve) => haproxy.once('exit', resolve));
    haproxy.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (running()) haproxy.kill('SIGKILL');
  }
  await Promise.all(
    members.map(
      (m) =>
        new Promise((resolve) => {
          m.server.closeAllConnections();
          m.server.close(resolve);
        }),
    ),
  );
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('Runtime API client against HAProxy 2.6', () => {
  it('changes a weight and reads it back with get weight and show servers state', async () => {
    await api.servers.setWeight('be_app', 'm1', 42);
    expect(await api.servers.getWeight('be_app', 'm1')).toEqual({ current: 42, initial: 10 });
    const rows = await api.servers.serversState('be_app');
    expect(rows.find((r) => r.srv_name === 'm1')).toMatchObject({ srv_uweight: 42, srv_iweight: 10, admin: 'ready' });
  });

  it('applies a pipelined batch over the unix socket with a result per command, errors included', async () => {
    const results = await unix.execute([
      setServerWeight('be_app', 'm2', 7),
      setServerWeight('be_app', 'nope', 7),
      setServerMaxconn('be_app', 'm2', 50),
      getWeight('be_app', 'm2'),
      setServerAddr('be_app', 'm3', HOST, members[2]!.port),
    ]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'error', 'ok', 'ok', 'ok']);
    expect(results[1]).toMatchObject({ message: 'No such server.' });
    expect(results[3]).toMatchObject({ output: '7 (initial 10)' });
    expect(results[4]).toMatchObject({ output: expect.stringContaining('no need to change the addr') });
    const stat = await api.stats.showStat({ proxy: 'be_app', types: ['server'] });
    expect(stat.find((r) => r.svname === 'm2')).toMatchObject({ slim: 50, weight: 7 });
    await expect(api.servers.setWeight('be_app', 'nope', 1)).rejects.toBeInstanceOf(RuntimeCommandError);
  });

  it('drains, puts in maintenance and makes ready again', async () => {
    const state = async (): Promise<[string, string | null]> => {
      const row = (await api.servers.serversState('be_app')).find((r) => r.srv_name === 'm3')!;
      const stat = (await api.stats.showStat({ proxy: 'be_app', types: ['server'] })).find((r) => r.svname === 'm3')!;
      return [row.admin, stat.status];
    };
    await api.servers.setState('be_app', 'm3', 'drain');
    expect(await state()).toEqual(['drain', 'DRAIN']);
    await api.servers.setState('be_app', 'm3', 'maint');
    expect(await state()).toEqual(['maint', 'MAINT']);
    await api.servers.setState('be_app', 'm3', 'ready');
    expect((await state())[0]).toBe('ready');
  });

  it('adds a server with health checks, enables it, and traffic reaches it; then deletes it after maintenance', async () => {
    const extra = await member('m4');
    await api.servers.add('be_app', 'm4', HOST, extra.port, {
      weight: 10,
      check: { intervalMs: 200, rise: 1, fall: 2 },
    });
    const row = (await api.servers.serversState('be_app')).find((r) => r.srv_name === 'm4');
    expect(row).toMatchObject({ admin: 'ready', srv_port: extra.port });
    await expect
      .poll(async () => (await request('app.test').catch(() => null))?.member, { timeout: 5000, interval: 10 })
      .toBe('m4');
    expect((await api.stats.showStat({ proxy: 'be_app' })).find((r) => r.svname === 'm4')?.check_status).toMatch(
      /^L7OK|INI$/,
    );

    await expect(api.servers.add('be_app', 'm4', HOST, extra.port)).rejects.toThrow(
      /Already exists a server with the same name/,
    );
    await expect(tcp.execute([delServer('be_app', 'm4')])).resolves.toEqual([
      expect.objectContaining({ status: 'error', message: 'Only servers in maintenance mode can be deleted.' }),
    ]);
    await api.servers.remove('be_app', 'm4');
    expect((await api.servers.serversState('be_app')).map((r) => r.srv_name)).toEqual(['m1', 'm2', 'm3']);
  });

  it('sets a frontend maxconn and reads it back as slim in show stat', async () => {
    await api.frontends.setMaxconn('fe_main', 123);
    const [fe] = await api.stats.showStat({ proxy: 'fe_main', types: ['frontend'] });
    expect(fe).toMatchObject({ svname: 'FRONTEND', slim: 123 });
  });

  it('adds, sets and deletes map entries, read back with show map, and routing follows at once', async () => {
    const map = join(dir, 'hosts.map');
    await api.maps.add(map, 'new.test', 'be_alt');
    expect((await request('new.test')).member).toBe('alt1');
    await api.maps.set(map, 'new.test', 'be_app');
    expect(await api.maps.show(map)).toEqual([
      expect.objectContaining({ key: 'alt.test', value: 'be_alt' }),
      expect.objectContaining({ key: 'new.test', value: 'be_app' }),
    ]);
    expect((await request('new.test')).member).toMatch(/^m\d$/);
    await api.maps.del(map, 'new.test');
    expect((await api.maps.show(map)).map((e) => e.key)).toEqual(['alt.test']);
    await expect(api.maps.set(map, 'gone.test', 'be_alt')).rejects.toThrow(/entry not found/);
  });

  it('replaces a whole map atomically through a prepared version', async () => {
    const map = join(dir, 'rl.map');
    const entries = Array.from({ length: 1200 }, (_, i) => [`t${i}`, String(100 + i)] as const);
    await api.maps.replace(map, entries);
    const shown = await api.maps.show(map);
    expect(shown).toHaveLength(1200);
    expect(shown[0]).toMatchObject({ key: 't0', value: '100' });
    expect(shown.at(-1)).toMatchObject({ key: 't1199', value: '1299' });
  });

  it('replaces a served certificate with set ssl cert + commit ssl cert', async () => {
    expect(await servedCertificate()).toBe('old.test');
    await api.certificates.update(join(dir, 'site.pem'), await selfSigned('new.test'));
    expect(await servedCertificate()).toBe('new.test');
    await expect(api.certificates.update(join(dir, 'absent.pem'), await selfSigned('other.test'))).rejects.toThrow(
      /not referenced by the configuration/,
    );
  });

  it('reads show info and the master CLI show proc, and a reload forgets runtime changes', async () => {
    const info = await api.info.showInfo();
    expect(info.version).toMatch(/^2\.6\./);
    const master = createMasterApi(new OneShotRuntimeClient({ path: join(dir, 'master.sock') }));
    const before = await master.showProc();
    expect(before.master).toMatchObject({ type: 'master', reloads: 0, failedReloads: 0 });
    expect(before.workers).toEqual([expect.objectContaining({ pid: info.pid, current: true })]);

    await master.reload();
    // The master re-executes itself: its socket refuses connections for a moment.
    await vi.waitFor(
      async () => {
        const procs = await master.showProc();
        expect(procs.master.reloads).toBe(1);
        expect(
          procs.workers.some((w) => w.current && w.pid !== info.pid),
          'a new current worker',
        ).toBe(true);
      },
      { timeout: 5000, interval: 50 },
    );
    // The new worker starts from the configuration: the weight set at runtime is gone.
    await expect
      .poll(async () => (await tcp.execute([getWeight('be_app', 'm1')]))[0]?.status, { timeout: 5000, interval: 50 })
      .toBe('ok');
    expect(await api.servers.getWeight('be_app', 'm1')).toEqual({ current: 10, initial: 10 });
    // The client's session from before the reload was left with the old, stopping worker; it
    // noticed and moved to the new one.
    const after = await master.showProc();
    expect((await api.info.showInfo()).pid).toBe(after.workers.find((w) => w.current)!.pid);
  });
});
