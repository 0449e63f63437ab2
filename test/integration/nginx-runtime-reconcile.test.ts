import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { TestPki } from '../support/openssl.js';
import { eventually, freePort } from './haproxy-render-support.js';

/**
 * The reconciler against a real nginx (1.22, Debian's Lua module) serving the runtime channel on
 * loopback with mutual TLS: the control plane's client certificate and the node certificate its
 * fleet PKI issued for the node's runtimeAddress. The channel is a stand-in
 * (test/fixtures/nginx-runtime/standin_channel.lua) that speaks the contract's protocol and
 * stores what it is pushed, so this proves the TLS, the HTTP, the reconcile loop, the health path,
 * the plan and node status end to end; the lead points it at the real module at merge. The test
 * plays the agent (reports the config applied, heartbeats); every wait is bounded; only the nginx
 * this file started is stopped, by its PID.
 */

const HOST = '127.0.0.1';
const NODE = 'ngx-rt';
const FIXTURES = fileURLToPath(new URL('../fixtures/nginx-runtime/', import.meta.url));

let app: TestApp;
let dir: string;
let channelPort: number;
let controlPort: number;
let nginx: ChildProcess | null = null;
let pki: TestPki;
/** The revision of the last write before the tests. */
let seeded: number;

function nginxConf(): string {
  return `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/temp-body;
  proxy_temp_path ${dir}/temp-proxy;
  fastcgi_temp_path ${dir}/temp-fastcgi;
  uwsgi_temp_path ${dir}/temp-uwsgi;
  scgi_temp_path ${dir}/temp-scgi;
  lua_package_path "${FIXTURES}?.lua;;";
  lua_shared_dict sy_state 4m;
  lua_shared_dict sy_health 1m;
  init_by_lua_block { require "resty.core" }
  server {
    listen ${HOST}:${channelPort} ssl;
    ssl_certificate ${dir}/node.crt;
    ssl_certificate_key ${dir}/node.key;
    ssl_client_certificate ${dir}/ca.pem;
    ssl_verify_client on;
    client_max_body_size 16m;
    client_body_buffer_size 16m;
    location /switchyard/v1/ { content_by_lua_block { require("standin_channel").handle() } }
    location / { return 404; }
  }
  server {
    listen ${HOST}:${controlPort};
    location /test/ { content_by_lua_block { require("standin_channel").control() } }
  }
}
`;
}

async function startNginx(): Promise<void> {
  const child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', `${dir}/`, '-g', 'daemon off;'], {
    stdio: 'ignore',
  });
  nginx = child;
  await eventually(
    'nginx to serve the control listener',
    async () => {
      if (child.exitCode !== null) throw new Error(readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000));
      return (await control('GET', '/test/entries?upstream=none')).status === 404 ? true : undefined;
    },
    5000,
    50,
  );
}

async function stopNginx(): Promise<void> {
  const child = nginx;
  nginx = null;
  if (child === null || child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM'); // fast shutdown: the master stops its own workers
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** The nginx workers' PIDs: a reload would replace them. */
function workerPids(): number[] {
  const pid = nginx!.pid!;
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number).sort();
}

/** A request to the stand-in's plain control listener. */
function control(method: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port: controlPort, method, path, timeout: 2000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? null : JSON.parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('control request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** What the node holds of an upstream, as `name weight admin[ backup]` per peer, or undefined when it holds none. */
async function heldPeers(upstream: string): Promise<string[] | undefined> {
  const res = await control('GET', `/test/entries?upstream=${upstream}`);
  if (res.status !== 200) return undefined;
  return (res.body.peers as { name: string; weight: number; admin: string; backup: boolean }[]).map(
    (p) => `${p.name} ${p.weight} ${p.admin}${p.backup ? ' backup' : ''}`,
  );
}

async function write(method: string, path: string, body?: unknown): Promise<number> {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body.revision as number;
}

/** The agent's part: fetch the node's config and report it applied (nginx here runs the stand-in, not these files). */
async function applyLatest(): Promise<void> {
  const config = await app.admin('GET', `/v1/nodes/${NODE}/config`);
  expect(config.status).toBe(200);
  const report = await app.admin('POST', `/v1/nodes/${NODE}/status`, {
    event: 'applied',
    contentHash: config.body.contentHash,
    revision: config.body.revision,
  });
  expect(report.status).toBe(200);
}

const nodeStatus = async () => (await app.admin('GET', `/v1/nodes/${NODE}`)).body.status;

/** One HTTPS request to the channel with the given TLS options: the status, or the error that ended it. */
function channelRequest(options: https.RequestOptions): Promise<number | string> {
  return new Promise((resolve) => {
    const req = https.request(
      { host: HOST, port: channelPort, path: '/switchyard/v1/state', timeout: 3000, agent: false, ...options },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

beforeAll(async () => {
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_LEADER_RETRY_MS: '100',
    SWITCHYARD_RECONCILE_INTERVAL_MS: '300',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '300',
  });
  pki = await TestPki.create();
  dir = mkdtempSync(join(tmpdir(), 'switchyard-nginx-runtime-'));
  chmodSync(dir, 0o755); // nginx workers run as an unprivileged user
  channelPort = await freePort(HOST);
  controlPort = await freePort(HOST);
  const created = await app.admin('POST', '/v1/nodes', {
    name: NODE,
    kind: 'nginx',
    runtimeAddress: { host: HOST, port: channelPort },
    capacity: { vcpu: 2, memoryMb: 1024 },
    configDir: dir,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect(created.body.runtimeCertificate).toMatchObject({ serial: expect.any(String) });
  // The node's certificate and trusted CAs as the fleet PKI issued them for its runtimeAddress.
  const material = (await app.cp.services.pki.nodeMaterial(NODE))!;
  writeFileSync(join(dir, 'node.crt'), material.certificatePem);
  writeFileSync(join(dir, 'node.key'), material.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.pem'), material.caBundlePem);
  writeFileSync(join(dir, 'nginx.conf'), nginxConf());
  await startNginx();

  await write('POST', '/v1/tenants', { id: 't1', proxyKind: 'nginx', reservation: { vcpu: 1, memoryMb: 512 } });
  await write('POST', '/v1/tenants/t1/pools', {
    name: 'web',
    healthCheck: { type: 'http', path: '/healthz', intervalMs: 1000, timeoutMs: 500 },
  });
  await write('PUT', '/v1/tenants/t1/pools/web/members', {
    members: [
      { name: 'm1', address: '127.0.0.1', port: 18081 },
      { name: 'm2', address: '127.0.0.1', port: 18082 },
    ],
  });
  seeded = await write('POST', '/v1/tenants/t1/vips', {
    name: 'www',
    address: HOST,
    port: await freePort(HOST),
    protocol: 'http',
    defaultPool: 'web',
  });
}, 60_000);

afterAll(async () => {
  await stopNginx();
  await app?.stop();
  await pki?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('an NGINX node with a runtime channel, reconciled', () => {
  it("holds the tenant's upstream as pushed over mutual TLS, and the node reports the push live", async () => {
    await eventually('the upstream on the node', async () =>
      (await heldPeers('t_t1_web'))?.join() === 'm1 100 ready,m2 100 ready' ? true : undefined,
    );
    const status = await eventually('the push recorded', async () => {
      const s = await nodeStatus();
      return s.runtime.revision >= seeded ? s : undefined;
    });
    expect(status.runtime).toMatchObject({ pending: 0, error: null });
    expect(status.runtime.commandsSent).toBeGreaterThanOrEqual(2);
    await applyLatest();
    await expect.poll(async () => (await nodeStatus()).converged, { timeout: 5000 }).toBe(true);
  });

  it('changes weights, states and the member set live, without a reload', async () => {
    const workers = workerPids();
    await write('PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 20 });
    await eventually('the weight on the node', async () =>
      (await heldPeers('t_t1_web'))?.includes('m1 20 ready') ? true : undefined,
    );
    await write('PATCH', '/v1/tenants/t1/pools/web/members/m2', { state: 'drain' });
    await eventually('the drain on the node', async () =>
      (await heldPeers('t_t1_web'))?.includes('m2 100 drain') ? true : undefined,
    );
    await write('POST', '/v1/tenants/t1/pools/web/members', { name: 'm3', address: '127.0.0.1', port: 18083 });
    await write('DELETE', '/v1/tenants/t1/pools/web/members/m2');
    await eventually('the new member set on the node', async () =>
      (await heldPeers('t_t1_web'))?.join() === 'm1 20 ready,m3 100 ready' ? true : undefined,
    );
    expect(workerPids()).toEqual(workers);
    const metrics = (await app.admin('GET', '/metrics')).body as string;
    const ok = new RegExp(`^switchyard_runtime_commands_total\\{node="${NODE}",outcome="ok"\\} (\\d+)`, 'm').exec(
      metrics,
    );
    expect(Number(ok?.[1])).toBeGreaterThanOrEqual(5);
  });

  it("reports a member's health from the node's channel in the tenant's status, as HAProxy's checks are", async () => {
    expect((await control('GET', `/test/health?key=t_t1_web/m3&health=down&last=connection%20refused`)).status).toBe(
      200,
    );
    const member = await eventually('m3 down in the tenant status', async () => {
      const members = (await app.admin('GET', '/v1/tenants/t1/status')).body.members as {
        member: string;
        health: { node: string; status: string; checkStatus: string | null; checkDescription?: string }[];
      }[];
      const m3 = members.find((m) => m.member === 'm3')?.health.find((h) => h.node === NODE);
      return m3?.status === 'DOWN' ? m3 : undefined;
    });
    expect(member).toMatchObject({ status: 'DOWN', checkStatus: 'L4CON' });
  });

  it('plans a dry run of a member change as live through the runtime channel, and pushes nothing for it', async () => {
    const res = await app.admin('PATCH', '/v1/tenants/t1/pools/web/members/m1?dryRun=true', { weight: 30 });
    expect(res.status).toBe(200);
    const plan = (res.body.plan.nodes as { node: string; runtime: any }[]).find((n) => n.node === NODE)!;
    expect(plan.runtime).toMatchObject({
      address: `${HOST}:${channelPort}`,
      reachable: true,
      error: null,
      commands: [
        {
          command: 'set upstream t_t1_web',
          description: 'changed upstream of pool web of tenant t1: roundrobin, http check; m1 weight 30, m3 weight 100',
        },
      ],
      notes: ['1 runtime change(s) go live through the runtime channel, no reload'],
    });
    const current = (await app.admin('GET', '/v1/plan')).body.nodes.find((n: { node: string }) => n.node === NODE);
    expect(current.runtime).toMatchObject({ reachable: true, commands: [] });
    expect(await heldPeers('t_t1_web')).toEqual(['m1 20 ready', 'm3 100 ready']);
  });

  it('answers only clients with a certificate from the fleet CA', async () => {
    expect(await channelRequest({ rejectUnauthorized: false })).toBe(400);
    const stranger = await pki.root('Not Switchyard');
    const client = await pki.issue('switchyard-control-plane', stranger);
    expect(await channelRequest({ rejectUnauthorized: false, cert: client.cert, key: client.key })).toBe(400);
    const own = (await app.cp.services.pki.clientCredentials())!;
    expect(
      await channelRequest({ ca: own.caBundlePem, cert: own.certificatePem, key: own.keyPem, servername: '' }),
    ).toBe(200);
  });

  it('when the channel stops answering, the node is not converged and says why; when nginx is back, it gets its whole state again', async () => {
    await stopNginx();
    // While nginx shuts down, a pass may see its connection reset; once it is gone, nothing listens.
    const refused = new RegExp(
      `^cannot read the node's runtime channel: nothing listens on tls:127\\.0\\.0\\.1:${channelPort} \\(connection refused\\)`,
    );
    const failing = await eventually('the failure recorded', async () => {
      const s = await nodeStatus();
      return refused.test(s.runtime.error ?? '') ? s : undefined;
    });
    expect(failing.converged).toBe(false);
    expect(failing.waitingFor).toMatch(/^its runtime channel, whose last push failed: /);
    // A new nginx starts with empty dictionaries (here no state file refills them): the reconciler pushes it all.
    await startNginx();
    await eventually('the state pushed again', async () =>
      (await heldPeers('t_t1_web'))?.join() === 'm1 20 ready,m3 100 ready' ? true : undefined,
    );
    await eventually('the failure cleared', async () =>
      (await nodeStatus()).runtime.error === null ? true : undefined,
    );
  });
});
