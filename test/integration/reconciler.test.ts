import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision } from '../support/fixture.js';
import { eventually, freePort, listen, request } from './haproxy-render-support.js';
import { ProxyNode } from './proxy-node.js';

/**
 * The reconciler against two real HAProxy 2.6 nodes on loopback, started from the files the
 * control plane renders for them (the test plays the agent's part: write the files, report them
 * applied). Both nodes listen on the same VIP ports (SO_REUSEPORT), in front of small node HTTP
 * members. Runtime changes must reach both proxies through the Runtime API with no reload (the
 * worker PID stays), removals must drain first, structural changes must wait for a reload, and a
 * stopped node must hold up nobody. Every wait is bounded; only PIDs this file started are stopped.
 */

const HOST = '127.0.0.1';

interface Member {
  readonly name: string;
  readonly port: number;
  /** Ends the requests held on `/hold`. */
  release(): void;
  close(): Promise<void>;
}

/** `/healthz` answers 200; `/hold` answers only once released; anything else names the member. */
async function member(name: string): Promise<Member> {
  let held: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') return void res.writeHead(200).end('ok');
    const answer = () => void res.writeHead(200, { 'x-member': name, connection: 'close' }).end(name);
    if (req.url === '/hold') held.push(answer);
    else answer();
  });
  const port = await listen(server, HOST);
  return {
    name,
    port,
    release: () => {
      for (const answer of held) answer();
      held = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let app: TestApp;
let edge1: ProxyNode;
let edge2: ProxyNode;
const members: Record<string, Member> = {};
const vip = { web: 0, batch: 0 };
const pids: Record<string, number> = {};

const weightOf = async (node: ProxyNode, backend: string, server: string) =>
  (await node.servers(backend)).find((r) => r.srv_name === server)?.srv_uweight;
const nodeStatus = async (name: string) => (await app.admin('GET', `/v1/nodes/${name}`)).body.status.runtime;

async function write(method: string, path: string, body?: unknown): Promise<number> {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body.revision as number;
}

beforeAll(async () => {
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_RECONCILE_INTERVAL_MS: '2000',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '1000',
    SWITCHYARD_DRAIN_TIMEOUT_MS: '60000',
  });
  for (const name of ['m1', 'm2', 'm3', 'b1', 'b2']) members[name] = await member(name);
  vip.web = await freePort(HOST);
  vip.batch = await freePort(HOST);
  edge1 = await ProxyNode.create('edge-1');
  edge2 = await ProxyNode.create('edge-2');
  const check = { type: 'http', path: '/healthz', intervalMs: 300, timeoutMs: 200, rise: 1, fall: 1 };
  const m = (name: string, weight = 100) => ({ name, address: HOST, port: members[name]!.port, weight });
  await write('POST', '/v1/tenants', { id: 't1', reservation: { vcpu: 1, memoryMb: 512 } });
  await write('POST', '/v1/tenants/t1/pools', { name: 'web', healthCheck: check });
  await write('PUT', '/v1/tenants/t1/pools/web/members', { members: [m('m1'), m('m2')] });
  await write('POST', '/v1/tenants/t1/pools', { name: 'batch', healthCheck: check });
  // b2 takes no traffic, so a request to the batch VIP is held by b1.
  await write('PUT', '/v1/tenants/t1/pools/batch/members', { members: [m('b1', 256), m('b2', 0)] });
  await write('POST', '/v1/tenants/t1/vips', {
    name: 'web',
    address: HOST,
    port: vip.web,
    protocol: 'http',
    defaultPool: 'web',
  });
  await write('POST', '/v1/tenants/t1/vips', {
    name: 'batch',
    address: HOST,
    port: vip.batch,
    protocol: 'http',
    defaultPool: 'batch',
  });
  for (const node of [edge1, edge2]) {
    expect((await app.admin('POST', '/v1/nodes', node.registration())).status).toBe(201);
    await node.install(app.admin);
    await node.start();
    pids[node.name] = await node.workerPid();
  }
  // Both nodes observed and found converged: nothing left to send.
  await eventually(
    'both nodes converged',
    async () => {
      const revision = await currentRevision(app);
      const [a, b] = await Promise.all([nodeStatus('edge-1'), nodeStatus('edge-2')]);
      return a.revision === revision && b.revision === revision && a.error === null && b.error === null
        ? true
        : undefined;
    },
    15_000,
  );
}, 60_000);

afterAll(async () => {
  for (const m of Object.values(members)) m.release();
  await edge1?.remove();
  await edge2?.remove();
  await app?.stop();
  await Promise.all(Object.values(members).map((m) => m.close()));
});

describe('runtime changes reach every node without a reload', () => {
  it('when a weight changes, then both proxies carry it within moments and keep their worker', async () => {
    const started = Date.now();
    const revision = await write('PATCH', '/v1/tenants/t1/pools/web/members/m1', { weight: 42 });
    for (const node of [edge1, edge2]) {
      await eventually(
        `${node.name} weight`,
        async () => ((await weightOf(node, 'be_t1_web', 'm1')) === 42 ? true : undefined),
        5000,
        20,
      );
    }
    const elapsed = Date.now() - started;
    expect(await edge1.workerPid()).toBe(pids['edge-1']);
    expect(await edge2.workerPid()).toBe(pids['edge-2']);
    await eventually(
      'runtime revision recorded',
      async () => ((await nodeStatus('edge-1')).revision >= revision ? true : undefined),
      5000,
    );
    expect((await nodeStatus('edge-1')).commandsSent).toBeGreaterThan(0);
    // Measured here: ~45 ms. The push must not wait for the build's validator nor for a follow-up pass (1 s).
    expect(elapsed).toBeLessThan(900);
  });

  it('when a member is added, then both proxies add it, check it and send it traffic, with no reload', async () => {
    await write('POST', '/v1/tenants/t1/pools/web/members', {
      name: 'm3',
      address: HOST,
      port: members.m3!.port,
      weight: 100,
    });
    for (const node of [edge1, edge2]) {
      await eventually(
        `${node.name} has m3 up`,
        async () => {
          const row = (await node.stats()).find((r) => r.pxname === 'be_t1_web' && r.svname === 'm3');
          return row?.status === 'UP' ? row : undefined;
        },
        8000,
      );
      const m3 = (await node.servers('be_t1_web')).find((r) => r.srv_name === 'm3')!;
      expect(m3).toMatchObject({ srv_addr: HOST, srv_port: members.m3!.port, srv_uweight: 100, admin: 'ready' });
    }
    await eventually(
      'm3 serves through the VIP',
      async () => {
        const answers = await Promise.all(Array.from({ length: 6 }, () => request({ host: HOST, port: vip.web })));
        return answers.some((a) => a.headers['x-member'] === 'm3') ? true : undefined;
      },
      5000,
    );
    expect(await edge1.workerPid()).toBe(pids['edge-1']);
    expect(await edge2.workerPid()).toBe(pids['edge-2']);
    // The proxies' view of the member is stored per node, mapped back to tenant, pool and member.
    await eventually(
      'health stored',
      async () => {
        const rows = await app.database.handle.db
          .selectFrom('member_health')
          .selectAll()
          .where('member', '=', 'm3')
          .execute();
        return rows.length === 2 &&
          rows.every((r) => r.status === 'UP' && r.tenant_id === 't1' && r.pool === 'web' && r.check_status === 'L7OK')
          ? rows
          : undefined;
      },
      8000,
    );
  });

  it('when a member is removed while it serves a request, then it drains, the request completes, and only then is it deleted', async () => {
    const held = request({ host: HOST, port: vip.batch, path: '/hold' }, 15_000);
    const holder = await eventually(
      'the held request reaches b1',
      async () => {
        for (const node of [edge1, edge2]) {
          const row = (await node.stats()).find((r) => r.pxname === 'be_t1_batch' && r.svname === 'b1');
          if ((row?.scur ?? 0) > 0) return node;
        }
        return undefined;
      },
      5000,
    );
    const idle = holder === edge1 ? edge2 : edge1;
    await write('DELETE', '/v1/tenants/t1/pools/batch/members/b1');
    // The node without sessions deletes it at once; the one holding the request drains it.
    await eventually(
      'b1 deleted where idle',
      async () => ((await idle.servers('be_t1_batch')).some((r) => r.srv_name === 'b1') ? undefined : true),
      5000,
    );
    await eventually(
      'b1 draining where busy',
      async () =>
        (await holder.servers('be_t1_batch')).find((r) => r.srv_name === 'b1')?.admin === 'drain' ? true : undefined,
      5000,
    );
    await new Promise((r) => setTimeout(r, 1500)); // several passes: still there while the request is open
    expect((await holder.servers('be_t1_batch')).find((r) => r.srv_name === 'b1')?.admin).toBe('drain');
    const plan = (await app.admin('GET', '/v1/plan')).body.nodes.find((n: any) => n.node === holder.name);
    expect(plan.runtime.inProgress).toEqual([expect.stringMatching(/^be_t1_batch\/b1 is draining with 1 session/)]);
    members.b1!.release();
    expect((await held).status).toBe(200);
    await eventually(
      'b1 deleted where busy',
      async () => ((await holder.servers('be_t1_batch')).some((r) => r.srv_name === 'b1') ? undefined : true),
      8000,
    );
    expect((await holder.servers('be_t1_batch')).map((r) => r.srv_name)).toEqual(['b2']);
    expect(await holder.workerPid()).toBe(pids[holder.name]);
  });
});

describe('structural changes wait for a reload', () => {
  it('when a health check changes, then no runtime command is sent and the plan shows a reload pending for it', async () => {
    const sentBefore = (await nodeStatus('edge-1')).commandsSent;
    const revision = await write('PATCH', '/v1/tenants/t1/pools/web', {
      healthCheck: { type: 'http', path: '/ready', intervalMs: 300, timeoutMs: 200, rise: 1, fall: 1 },
    });
    await eventually(
      'pass done',
      async () => ((await nodeStatus('edge-1')).revision >= revision ? true : undefined),
      5000,
    );
    const plan = await app.admin('GET', '/v1/plan');
    expect(plan.status).toBe(200);
    expect(plan.body.revision).toBe(revision);
    for (const node of plan.body.nodes) {
      expect(node.runtime).toMatchObject({ reachable: true, commands: [] });
      expect(node.reload.pending).toBe(true);
      expect(node.reload.reasons).toEqual([expect.stringMatching(/^pool t1\/web changed \(.*health check/)]);
      expect(node.latest.structuralHash).not.toBe(node.applied.structuralHash);
    }
    expect((await nodeStatus('edge-1')).commandsSent).toBe(sentBefore);
    expect(await edge1.workerPid()).toBe(pids['edge-1']);
    // Once the node runs the new files (the agent's reload), nothing is pending.
    await edge1.install(app.admin);
    const after = (await app.admin('GET', '/v1/plan')).body.nodes.find((n: any) => n.node === 'edge-1');
    expect(after.reload).toEqual({ pending: false, reasons: [] });
  });
});

describe('a stopped node', () => {
  it('does not hold up the other, and is brought up to date when it returns', async () => {
    await edge2.stop();
    const revision = await write('PATCH', '/v1/tenants/t1/pools/web/members/m2', { weight: 77 });
    const started = Date.now();
    await eventually(
      'edge-1 updated',
      async () => ((await weightOf(edge1, 'be_t1_web', 'm2')) === 77 ? true : undefined),
      5000,
      20,
    );
    expect(Date.now() - started).toBeLessThan(3000);
    await eventually(
      'edge-2 reported unreachable',
      async () => ((await nodeStatus('edge-2')).error ? true : undefined),
      8000,
    );
    const plan = (await app.admin('GET', '/v1/plan')).body.nodes.find((n: any) => n.node === 'edge-2');
    expect(plan.runtime.reachable).toBe(false);
    // It comes back with the files it had: every runtime change since is lost with the old process.
    await edge2.start();
    pids['edge-2'] = await edge2.workerPid();
    await eventually(
      'edge-2 converged',
      async () => {
        const web = await edge2.servers('be_t1_web');
        const batch = await edge2.servers('be_t1_batch');
        const w = Object.fromEntries(web.map((r) => [r.srv_name, r.srv_uweight]));
        return w.m1 === 42 && w.m2 === 77 && w.m3 === 100 && batch.map((r) => r.srv_name).join() === 'b2'
          ? true
          : undefined;
      },
      15_000,
    );
    await eventually(
      'edge-2 status clean',
      async () => {
        const s = await nodeStatus('edge-2');
        return s.error === null && s.revision >= revision ? true : undefined;
      },
      8000,
    );
    expect(await edge2.workerPid()).toBe(pids['edge-2']);
  }, 45_000);
});

describe('dry runs', () => {
  it('answers a write with ?dryRun=true with the plan it would cause, and changes nothing', async () => {
    const before = await currentRevision(app);
    const auditBefore = await app.database.handle.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    const res = await app.admin('PATCH', '/v1/tenants/t1/pools/web/members/m2?dryRun=true', { weight: 5 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ dryRun: true, revision: before + 1, changed: true });
    for (const node of res.body.plan.nodes) {
      expect(node.desiredRevision).toBe(before + 1);
      expect(node.runtime.commands).toEqual([
        { command: 'set server be_t1_web/m2 weight 5', description: 'set the weight of be_t1_web/m2 to 5' },
      ]);
    }
    expect(await currentRevision(app)).toBe(before);
    expect((await app.admin('GET', '/v1/tenants/t1/pools/web/members/m2')).body.weight).toBe(77);
    const auditAfter = await app.database.handle.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    expect(auditAfter.n).toBe(auditBefore.n);
    // A negative: nothing may reach the proxies later either (a bounded look, long enough for a pass).
    await new Promise((r) => setTimeout(r, 500));
    expect(await weightOf(edge1, 'be_t1_web', 'm2')).toBe(77);
    expect(await weightOf(edge2, 'be_t1_web', 'm2')).toBe(77);
  });

  it('shows a structural write as a reload with its reason, and a write that changes nothing as no change', async () => {
    const port = await freePort(HOST);
    const created = await app.admin('POST', '/v1/tenants/t1/vips?dryRun=true', {
      name: 'extra',
      address: HOST,
      port,
      protocol: 'http',
      defaultPool: 'web',
    });
    expect(created.status).toBe(200);
    const node = created.body.plan.nodes.find((n: any) => n.node === 'edge-1');
    expect(node.reload.reasons).toContain('VIP t1/extra added');
    expect(node.runtime.pendingReload).toContain(
      'frontend fe_t1_extra is not running yet (a new VIP starts with the next reload)',
    );
    expect((await app.admin('GET', '/v1/tenants/t1/vips/extra')).status).toBe(404);
    const same = await app.admin('PATCH', '/v1/tenants/t1/pools/web/members/m2?dryRun=true', { weight: 77 });
    expect(same.body).toMatchObject({ dryRun: true, changed: false, revision: await currentRevision(app) });
  });

  it('refuses a dryRun value that is not a boolean, and a dry run of a write that records observed state', async () => {
    const bad = await app.admin('DELETE', '/v1/tenants/t1/pools/web/members/m2?dryRun=yes');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('query.dryRun');
    const report = await app.admin('POST', '/v1/nodes/edge-1/status?dryRun=true', { event: 'heartbeat' });
    expect(report.status).toBe(400);
    expect((await app.admin('GET', '/v1/tenants/t1/pools/web/members/m2')).status).toBe(200);
    expect((await app.admin('GET', '/v1/plan?dryRun=true')).status).toBe(400);
  });
});
