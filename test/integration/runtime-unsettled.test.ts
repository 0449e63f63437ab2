import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { findNode } from '../../src/db/node-repository.js';
import { NodeReconciler } from '../../src/jobs/node-reconciler.js';
import { createLogger } from '../../src/logger.js';
import { startControlPlane, type ControlPlane } from '../../src/main.js';
import { nodeSettingsOf } from '../../src/services/config/node-settings.js';
import type { Caller } from '../support/app.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision } from '../support/fixture.js';
import {
  eventually,
  freePort,
  httpMember,
  request,
  runtimeCommand,
  untilVipAnswers,
  type Closable,
} from './haproxy-render-support.js';
import { ProxyNode } from './proxy-node.js';

/**
 * A runtime pass never sets a node back to an older part of a tenant, or takes a tenant out, while
 * that tenant's new part is still being validated where the pass runs: the node may already run
 * it. Here it does, deterministically: replica B built the node's files (its agent polled B), and
 * the leader A, whose reconciler pushes to the node, has not validated them yet (its own build is
 * held back, as a slow `haproxy -c` under load holds it). Proven by real requests through a real
 * HAProxy, and by what its Runtime API holds.
 */

const HOST = '127.0.0.1';
let a: TestApp;
let b: ControlPlane;
let edge: ProxyNode;
let m1: Closable & { port: number };
let m2: Closable & { port: number };
const vip = { t1: 0, t2: 0 };

/** Calls replica B as the admin: what the node's agent does when it polls B. */
const onB: Caller = async (method, path, body) => {
  const res = await fetch(b.url + path, {
    method,
    headers: {
      authorization: `Bearer ${a.adminToken}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any, headers: res.headers };
};

async function write(method: string, path: string, body?: unknown): Promise<void> {
  const res = await a.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
}

/** Who answers 10 requests to a VIP, one connection each: the member, `status <code>`, or why none came (1 s each at most). */
async function answers(port: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await request({ host: HOST, port }, 1000).catch((e: Error) => e);
    if (res instanceof Error) out.push(res.message);
    else out.push(res.status === 200 ? String(res.headers['x-member']) : `status ${res.status}`);
  }
  return out;
}

beforeAll(async () => {
  a = await startTestApp();
  b = await startControlPlane(
    loadConfig({
      DATABASE_URL: a.database.url,
      PORT: '0',
      HOST,
      SWITCHYARD_ADMIN_TOKEN: a.adminToken,
      SWITCHYARD_SECRET_KEY: a.secretKey,
      LOG_LEVEL: 'silent',
      SWITCHYARD_RECONCILE: 'false',
      SWITCHYARD_REBALANCE: 'false',
      SWITCHYARD_STATS: 'false',
    }),
    createLogger('silent'),
  );
  m1 = await httpMember('m1', HOST);
  m2 = await httpMember('m2', HOST);
  vip.t1 = await freePort(HOST);
  vip.t2 = await freePort(HOST);
  edge = await ProxyNode.create('edge-u');
  expect((await a.admin('POST', '/v1/nodes', edge.registration())).status).toBe(201);
  await write('POST', '/v1/tenants', { id: 't1', reservation: { vcpu: 0.5, memoryMb: 256 } });
  await write('POST', '/v1/tenants/t1/pools', { name: 'web' });
  await write('PUT', '/v1/tenants/t1/pools/web/members', { members: [{ name: 'm1', address: HOST, port: m1.port }] });
  await write('POST', '/v1/tenants/t1/vips', {
    name: 'www',
    address: HOST,
    port: vip.t1,
    protocol: 'http',
    defaultPool: 'web',
  });
  // A builds and validates t1 as it is now: what A knows as t1's last validated part.
  await edge.install(a.admin);
  await edge.start();
  await untilVipAnswers(HOST, vip.t1);
}, 60_000);

afterAll(async () => {
  await edge?.remove();
  await b?.stop();
  await a?.stop();
  await m1?.close();
  await m2?.close();
});

describe('a node that runs parts the pushing replica has not validated yet', () => {
  it('keeps them: a changed tenant is not set back and a new one is not taken out, and the pass after the build brings the node to the revision', async () => {
    // t1 moves to m2 and gains a health check (a structural change); t2 is new.
    await write('PUT', '/v1/tenants/t1/pools/web/members', { members: [{ name: 'm2', address: HOST, port: m2.port }] });
    await write('PATCH', '/v1/tenants/t1/pools/web', {
      healthCheck: { type: 'http', path: '/healthz', intervalMs: 300, timeoutMs: 200, rise: 1, fall: 1 },
    });
    await write('POST', '/v1/tenants', { id: 't2', reservation: { vcpu: 0.5, memoryMb: 256 } });
    await write('POST', '/v1/tenants/t2/pools', { name: 'web' });
    await write('PUT', '/v1/tenants/t2/pools/web/members', { members: [{ name: 'm2', address: HOST, port: m2.port }] });
    await write('POST', '/v1/tenants/t2/vips', {
      name: 'www',
      address: HOST,
      port: vip.t2,
      protocol: 'http',
      defaultPool: 'web',
    });
    const revision = await currentRevision(a);
    // The agent polled replica B: B built and validated both, and the node reloaded onto its files.
    expect((await edge.install(onB)).revision).toBe(revision);
    await edge.reload();
    await m1.close(); // m1 is gone: a node set back to t1's old part sends t1's requests to nothing
    await untilVipAnswers(HOST, vip.t2);
    expect(await answers(vip.t1)).toEqual(Array(10).fill('m2'));

    // A's reconciler for the node, its build held back: its passes plan from A's runtime snapshot.
    const db = a.database.handle.db;
    const services = a.cp.services;
    let releaseBuild!: () => void;
    const buildHeld = new Promise<void>((r) => (releaseBuild = r));
    const reconciler = new NodeReconciler(
      (await findNode(db, edge.name))!,
      {
        db,
        build: async (node) => {
          await buildHeld;
          return services.configs.buildServed(node);
        },
        runtimeSnapshot: (node, atLeast) => services.configs.runtimeSnapshot(nodeSettingsOf(node), atLeast),
        currentRevision: () => currentRevision(a),
        runtime: services.runtime,
        logger: createLogger(process.env.LOG_LEVEL ?? 'silent'),
      },
      { backoff: { initialMs: 100, maxMs: 500, factor: 2 }, followUpMs: 100 },
    );
    try {
      const snapshot = await services.configs.runtimeSnapshot(nodeSettingsOf((await findNode(db, edge.name))!));
      expect(snapshot.tenants.map((t) => t.id)).toEqual([]);
      expect(snapshot.unsettled?.map((t) => t.id)).toEqual(['t1', 't1', 't2']);

      reconciler.wake();
      const runtime = async () => (await a.admin('GET', `/v1/nodes/${edge.name}`)).body.status.runtime;
      await eventually('a pass of the held-back reconciler', async () =>
        (await runtime()).pushedAt !== null ? true : undefined,
      );
      // Both VIPs answer from what the node runs, which its Runtime API still holds.
      expect(await answers(vip.t1)).toEqual(Array(10).fill('m2'));
      expect(await answers(vip.t2)).toEqual(Array(10).fill('m2'));
      const servers = (await edge.servers('be_t1_web')).map((s) => `${s.srv_name} ${s.srv_admin_state}`);
      expect(servers).toEqual(['m2 0']);
      const map = await runtimeCommand(edge.adminSocket, `show map ${edge.dir}/maps/tenant-caps.map`);
      expect(map).toMatch(/ t2 \d+\n/);
      // Nothing was sent, and no revision is claimed while parts await validation.
      expect(await runtime()).toMatchObject({ revision: null, error: null, commandsSent: 0 });

      // A's build validates them; the pass after it brings the node to the revision, sending nothing.
      releaseBuild();
      await eventually(
        `the node's runtime at revision ${revision}`,
        async () => {
          const r = await runtime();
          return r.revision === revision && r.pending === 0 ? r : undefined;
        },
        15_000,
      );
      expect((await runtime()).commandsSent).toBe(0);
      expect(await answers(vip.t1)).toEqual(Array(10).fill('m2'));
    } finally {
      releaseBuild();
      await reconciler.stop();
    }
  }, 60_000);
});
