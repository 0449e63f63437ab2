import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/fleet/agent/agent.js';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  converged,
  expectOk,
  masterCli,
  memoryLogger,
  startFastAgent,
  startHaproxy,
  startNginx,
  type ProxyProcess,
} from './agent-support.js';
import { eventually, freePort, httpMember, type Closable } from './haproxy-render-support.js';

/**
 * The blast radius of a reload that fails on the node, with real HAProxy and NGINX on loopback:
 * a plain TCP server holds a tenant's VIP port on purpose, so `haproxy -c` / `nginx -t` accept the
 * files but the proxy cannot bind the listener at reload. The agent names the listener; the
 * control plane holds that tenant on that node at the state it runs and lets the other tenants'
 * changes through; the tenant's status says why; when the port is freed it goes live on its own.
 * Only 127.0.0.0/8; every wait is bounded; only processes started here are stopped, by PID.
 */

interface Node {
  readonly name: string;
  readonly kind: 'haproxy' | 'nginx';
  readonly configDir: string;
  readonly socket: string;
  token: string;
  agent?: Agent;
  proxy?: ProxyProcess;
}

let app: TestApp;
let root: string;
const nodes: Node[] = [];
const closables: Closable[] = [];
const logs = memoryLogger();

function get(address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: address, port, path: '/', agent: false, headers: { connection: 'close' }, timeout: 2000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A process of this test that holds ADDRESS:PORT, as another service on the node would. */
async function holdPort(address: string, port: number): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true }, resolve);
  });
  return server;
}

async function tenantWithVip(
  id: string,
  kind: 'haproxy' | 'nginx',
  vip: { name: string; address: string; port: number },
): Promise<number> {
  const member = await httpMember(`${id}-m1`, '127.0.7.1');
  closables.push(member);
  await expectOk(app, 'POST', '/v1/tenants', { id, proxyKind: kind, reservation: { vcpu: 0.5, memoryMb: 512 } });
  await expectOk(app, 'POST', `/v1/tenants/${id}/pools`, { name: 'web' });
  await expectOk(app, 'PUT', `/v1/tenants/${id}/pools/web/members`, {
    members: [{ name: 'm1', address: '127.0.7.1', port: member.port }],
  });
  return (await expectOk(app, 'POST', `/v1/tenants/${id}/vips`, { ...vip, protocol: 'http', defaultPool: 'web' }))
    .revision;
}

async function heldOn(tenant: string, node: string): Promise<any> {
  const status = (await app.admin('GET', `/v1/tenants/${tenant}/status`)).body;
  return status.nodes.find((n: { node: string }) => n.node === node);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-blast-'));
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_LEADER_RETRY_MS: '100',
    SWITCHYARD_RECONCILE_INTERVAL_MS: '500',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
    SWITCHYARD_RELOAD_HOLD_RETRY_MS: '500',
  });
  for (const [name, kind] of [
    ['hap', 'haproxy'],
    ['ngx', 'nginx'],
  ] as const) {
    const configDir = join(root, name, 'etc');
    const runtime =
      kind === 'haproxy' ? { runtimeAddress: { host: '127.0.0.1', port: await freePort('127.0.0.1') } } : {};
    const created = await expectOk(app, 'POST', '/v1/nodes', {
      name,
      kind,
      capacity: { vcpu: 4, memoryMb: 8192 },
      configDir,
      socketDir: join(root, name),
      ...runtime,
    });
    nodes.push({ name, kind, configDir, socket: join(root, name, 'master.sock'), token: created.agentToken });
  }
  for (const n of nodes) n.agent = startFastAgent(app.url, n, logs.logger);
  for (const n of nodes) await converged(app.admin, n.name, 0, 30_000);
  for (const n of nodes) n.proxy = n.kind === 'haproxy' ? startHaproxy(n.configDir, n.socket) : startNginx(n.configDir);
  await eventually(
    'haproxy up',
    async () =>
      (await masterCli(nodes[0]!.socket)
        .showProc()
        .catch(() => null))
        ? true
        : undefined,
    10_000,
  );
}, 120_000);

afterAll(async () => {
  for (const n of nodes) {
    await n.agent?.stop().catch(() => undefined);
    await n.proxy?.stop().catch(() => undefined);
  }
  for (const c of closables) await c.close().catch(() => undefined);
  await app?.stop().catch(() => undefined);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.each([
  { kind: 'haproxy', node: 'hap', net: '127.0.91' },
  { kind: 'nginx', node: 'ngx', net: '127.0.92' },
] as const)('on $kind, a VIP port held by another process on the node', ({ kind, node, net: prefix }) => {
  const [yAddress, xAddress, y2Address] = [`${prefix}.1`, `${prefix}.2`, `${prefix}.3`];
  const y = `y-${kind}`;
  const x = `x-${kind}`;
  let yPort: number;
  let xPort: number;
  let holder: net.Server | null = null;

  it('holds only the tenant whose listener cannot bind, says why in its status, and lets the others through', async () => {
    yPort = await freePort(yAddress);
    const yRevision = await tenantWithVip(y, kind, { name: 'www', address: yAddress, port: yPort });
    await converged(app.admin, node, yRevision, 30_000);
    await eventually(
      `${y} answers`,
      async () => ((await get(yAddress, yPort).catch(() => 0)) === 200 ? true : undefined),
      15_000,
    );

    xPort = await freePort(xAddress);
    holder = await holdPort(xAddress, xPort);
    const xRevision = await tenantWithVip(x, kind, { name: 'www', address: xAddress, port: xPort });
    const held = await eventually(
      `${x} held on ${node}`,
      async () => {
        const n = await heldOn(x, node);
        return n?.held?.cause === 'reload' ? n : undefined;
      },
      30_000,
    );
    expect(held.held.error).toContain(`port ${xAddress}:${xPort} is in use on the node`);
    expect(held.held.error).toContain(`held on node ${node}`);
    expect(held.cause).toBe('held');
    expect(held.converged).toBe(false);
    // The node keeps x as it ran there: its pool, applied before the VIP was added.
    expect(held.held.servingRevision).toBeLessThan(xRevision);

    // The node's config and the plan list it (between tries: a try serves x's current state once more).
    await eventually(
      `${node}'s config and plan list ${x} as held`,
      async () => {
        const config = (await app.admin('GET', `/v1/nodes/${node}/config`)).body;
        const plan = (await app.admin('GET', '/v1/plan')).body.nodes.find((n: { node: string }) => n.node === node);
        const listed = (held: { tenant: string; cause?: string }[] | undefined) =>
          held?.some((h) => h.tenant === x && h.cause === 'reload') === true;
        return listed(config.heldTenants) && listed(plan?.latest?.heldTenants) ? true : undefined;
      },
      30_000,
      50,
    );

    // The node still serves y, and y's next structural change goes live there despite x.
    expect(await get(yAddress, yPort)).toBe(200);
    const y2Port = await freePort(y2Address);
    const write = await expectOk(app, 'POST', `/v1/tenants/${y}/vips`, {
      name: 'second',
      address: y2Address,
      port: y2Port,
      protocol: 'http',
      defaultPool: 'web',
    });
    await eventually(
      `${y}'s new VIP answers on ${node}`,
      async () => ((await get(y2Address, y2Port).catch(() => 0)) === 200 ? true : undefined),
      30_000,
    );
    const yStatus = await heldOn(y, node);
    expect(yStatus.held).toBeNull();
    // Every version with x's listener fails while the port is held: y's VIP came with one that left x out.
    expect(write.revision).toBeGreaterThan(0);
    expect(await get(yAddress, yPort)).toBe(200);
    const failedTries = logs
      .lines()
      .filter(
        (l) =>
          l.msg === 'the proxy refused to reload; the previous release is active again and still serving' &&
          JSON.stringify(l.failedListeners ?? []).includes(`${xPort}`),
      );
    expect(failedTries.length).toBeGreaterThan(0);
  }, 120_000);

  it('when the port is freed, the held tenant goes live on its own within a bounded time', async () => {
    await new Promise<void>((resolve) => holder!.close(() => resolve()));
    holder = null;
    const started = Date.now();
    await eventually(
      `${x} answers on ${node}`,
      async () => ((await get(xAddress, xPort).catch(() => 0)) === 200 ? true : undefined),
      30_000,
      200,
    );
    const healedMs = Date.now() - started;
    await eventually(
      `${x} no longer held`,
      async () => {
        const n = await heldOn(x, node);
        return n?.held === null && n.converged ? true : undefined;
      },
      15_000,
    );
    expect(await get(yAddress, yPort)).toBe(200);
    console.log(`${kind}: held tenant live ${healedMs} ms after its port was freed`);
  }, 60_000);
});
