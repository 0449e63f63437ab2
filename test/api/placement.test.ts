import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision } from '../support/fixture.js';

/**
 * Placement through the API on real PostgreSQL: three HAProxy nodes in two zones, each with room
 * for 8 vCPU / 16 GB of reservations. Tenants go on two nodes in different zones; a reservation no
 * node has room for is refused with 409 saying how much is missing; a node that goes silent is
 * taken out by the leader's health pass and its tenants re-placed; it comes back when healthy.
 */

let app: TestApp;
const agents = new Map<string, string>();

const node = (name: string, zone: string, port: number) => ({
  name,
  kind: 'haproxy',
  zone,
  runtimeAddress: { host: '127.0.0.1', port },
  capacity: { vcpu: 8, memoryMb: 16384 },
});

async function ok(method: string, path: string, body?: unknown) {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

const placedOn = async (tenant: string): Promise<string[]> =>
  (await ok('GET', `/v1/tenants/${tenant}/placement`)).nodes.map((n: { node: string }) => n.node);

async function heartbeat(name: string) {
  const res = await app.as(agents.get(name)!)('POST', `/v1/nodes/${name}/status`, { event: 'heartbeat' });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  app = await startTestApp({ SWITCHYARD_HEARTBEAT_INTERVAL_S: '1' });
  for (const [name, zone, port] of [
    ['lb-1', 'z1', 9101],
    ['lb-2', 'z1', 9102],
    ['lb-3', 'z2', 9103],
  ] as const) {
    agents.set(name, (await ok('POST', '/v1/nodes', node(name, zone, port))).agentToken);
  }
}, 60_000);
afterAll(async () => {
  await app?.stop();
});

describe('placement', () => {
  it('when a tenant is created, then it is placed on two nodes in different zones, and only they render it', async () => {
    await ok('POST', '/v1/tenants', { id: 'a', reservation: { vcpu: 2, memoryMb: 4096 } });
    await ok('POST', '/v1/tenants/a/pools', { name: 'web' });
    await ok('POST', '/v1/tenants/a/vips', {
      name: 'web',
      address: '192.168.1.100',
      port: 80,
      protocol: 'http',
      defaultPool: 'web',
    });
    const nodes = await placedOn('a');
    expect(nodes).toHaveLength(2);
    const zones = (await ok('GET', '/v1/placements')).nodes
      .filter((n: { node: string }) => nodes.includes(n.node))
      .map((n: { zone: string }) => n.zone);
    expect(new Set(zones)).toEqual(new Set(['z1', 'z2']));
    const other = ['lb-1', 'lb-2', 'lb-3'].find((n) => !nodes.includes(n))!;
    for (const n of nodes)
      expect((await ok('GET', `/v1/nodes/${n}/config`)).files['haproxy.cfg']).toContain('frontend fe_a_web');
    expect((await ok('GET', `/v1/nodes/${other}/config`)).files['haproxy.cfg']).not.toContain('fe_a_web');
    const status = await ok('GET', '/v1/tenants/a/status');
    expect(status.nodes.map((n: { node: string }) => n.node).sort()).toEqual(nodes);
  });

  it('when a reservation fits no node, then creating the tenant is refused with 409 saying how much is missing, and nothing changes', async () => {
    const before = await currentRevision(app);
    const res = await app.admin('POST', '/v1/tenants', { id: 'huge', reservation: { vcpu: 10, memoryMb: 4096 } });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(
      /tenant huge needs 10 vCPU \/ 4096 MB on 2 nodes of kind haproxy in group default; the best \(lb-\d\) has [\d.]+ vCPU \/ \d+ MB free, [\d.]+ vCPU short/,
    );
    expect((await app.admin('GET', '/v1/tenants/huge')).status).toBe(404);
    expect(await currentRevision(app)).toBe(before);
  });

  it('when a raise no longer fits, then the patch is refused with 409 and the tenant keeps its reservation and nodes', async () => {
    const nodes = await placedOn('a');
    const before = await currentRevision(app);
    const res = await app.admin('PATCH', '/v1/tenants/a', {
      reservation: { vcpu: 7, memoryMb: 20000 },
      limit: { vcpu: 8, memoryMb: 20000 },
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/MB short/);
    expect((await ok('GET', '/v1/tenants/a')).reservation).toEqual({ vcpu: 2, memoryMb: 4096 });
    expect(await placedOn('a')).toEqual(nodes);
    expect(await currentRevision(app)).toBe(before);
  });

  it('when only one node has room left, then a tenant that needs two is refused with what the others lack', async () => {
    // Each node has 6 vCPU free after a; b takes 5 on two nodes, leaving the third node with 6.
    await ok('POST', '/v1/tenants', { id: 'b', reservation: { vcpu: 5, memoryMb: 1024 } });
    const res = await app.admin('POST', '/v1/tenants', { id: 'c', reservation: { vcpu: 5, memoryMb: 1024 } });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(
      /tenant c needs 5 vCPU \/ 1024 MB on 2 nodes.*only 1 has room; the best of the others \(lb-\d\) has 3 vCPU \/ \d+ MB free, 2 vCPU short/,
    );
    await ok('DELETE', '/v1/tenants/b');
  });

  it('when a registration waits for approval, then it holds no room until approved', async () => {
    const registrar = await app.token('registrar');
    const res = await app.as(registrar)('POST', '/v1/tenants', { id: 'p', reservation: { vcpu: 50, memoryMb: 1024 } });
    expect(res.status).toBe(201);
    expect(res.body.state).toBe('pending_approval');
    expect(await placedOn('p')).toEqual([]);
    const approve = await app.admin('POST', '/v1/tenants/p/approve', { reason: 'looks fine' });
    expect(approve.status).toBe(409);
    expect(approve.body.error.message).toMatch(/tenant p needs 50 vCPU/);
    expect((await ok('GET', '/v1/tenants/p')).state).toBe('pending_approval');
  });

  it('when a node is deleted, then its tenants get a replica on another node in the same write', async () => {
    const [gone] = await placedOn('a');
    agents.set('lb-4', (await ok('POST', '/v1/nodes', node('lb-4', 'z2', 9104))).agentToken);
    await ok('DELETE', `/v1/nodes/${gone}`);
    const nodes = await placedOn('a');
    expect(nodes).toHaveLength(2);
    expect(nodes).not.toContain(gone);
    const audit = await ok('GET', '/v1/audit?tenant=a');
    expect(audit.items.some((e: { action: string }) => e.action === 'place')).toBe(true);
  });

  it('when a node misses heartbeats, then the health pass takes it out and re-places its tenants; it comes back when healthy', async () => {
    const [silent, kept] = await placedOn('a');
    const live = (await ok('GET', '/v1/placements')).nodes
      .map((n: { node: string }) => n.node)
      .filter((n: string) => n !== silent);
    for (const n of live) await heartbeat(n);
    // The silent node last spoke a minute ago: 20 heartbeat intervals of 1 s.
    await sql`update nodes set last_heartbeat_at = now() - interval '60 seconds' where name = ${silent!}`.execute(
      app.cp.database.db,
    );
    const pass = await app.cp.services.placement.healthPass(0);
    expect(pass.excluded).toEqual([{ node: silent, reason: expect.stringMatching(/^no heartbeat for \d+ s/) }]);
    expect(pass.moves).toBe(2);
    const nodes = await placedOn('a');
    expect(nodes).toContain(kept);
    expect(nodes).not.toContain(silent);
    expect((await ok('GET', `/v1/nodes/${silent}`)).placementExcluded).toEqual({
      reason: expect.stringMatching(/^no heartbeat/),
      since: expect.any(String),
    });

    // A second pass with nothing new changes nothing.
    const again = await app.cp.services.placement.healthPass(0);
    expect(again).toMatchObject({ excluded: [], included: [], revision: null });

    await heartbeat(silent!);
    const back = await app.cp.services.placement.healthPass(0);
    expect(back.included).toEqual([silent]);
    expect((await ok('GET', `/v1/nodes/${silent}`)).placementExcluded).toBeNull();
    // Back in placement, it takes replicas again: here the tenant returns to restore its zone spread.
    const zoneOf = new Map(
      (await ok('GET', '/v1/placements')).nodes.map((n: { node: string; zone: string }) => [n.node, n.zone]),
    );
    expect(new Set((await placedOn('a')).map((n) => zoneOf.get(n))).size).toBe(2);
  });

  it("when a node's Runtime API pushes keep failing, then it leaves placement; one fresh failure is not enough", async () => {
    const [failing] = await placedOn('a');
    for (const n of (await ok('GET', '/v1/placements')).nodes) await heartbeat(n.node);
    const db = app.cp.database.db;
    await sql`update nodes set runtime_error = 'connect ECONNREFUSED', runtime_error_since = now() where name = ${failing!}`.execute(
      db,
    );
    expect((await app.cp.services.placement.healthPass(0)).excluded).toEqual([]);
    await sql`update nodes set runtime_error_since = now() - interval '60 seconds' where name = ${failing!}`.execute(
      db,
    );
    const pass = await app.cp.services.placement.healthPass(0);
    expect(pass.excluded).toEqual([
      {
        node: failing,
        reason: expect.stringMatching(/^its Runtime API pushes have failed for 60 s .*: connect ECONNREFUSED$/),
      },
    ]);
    expect(await placedOn('a')).not.toContain(failing);
    await sql`update nodes set runtime_error = null, runtime_error_since = null where name = ${failing!}`.execute(db);
    expect((await app.cp.services.placement.healthPass(0)).included).toEqual([failing]);
  });

  it('when every node of a pool is silent, then none is taken out (a doubtful node beats none)', async () => {
    await sql`update nodes set last_heartbeat_at = now() - interval '60 seconds'`.execute(app.cp.database.db);
    const before = await placedOn('a');
    const pass = await app.cp.services.placement.healthPass(0);
    expect(pass.excluded).toEqual([]);
    expect(pass.keptForLackOfOthers.length).toBeGreaterThan(0);
    expect(await placedOn('a')).toEqual(before);
  });

  it('when the leader has just started, then heartbeats it could not have heard do not count', async () => {
    const pass = await app.cp.services.placement.healthPass(Date.now());
    expect(pass.excluded).toEqual([]);
  });

  it('when a tenant is on more nodes than wanted (a fleet migrated from serving every tenant everywhere), then the next pass trims it', async () => {
    const db = app.cp.database.db;
    await sql`insert into placements (tenant_id, node_name, reservation_vcpu, reservation_memory_mb, reason, revision)
              select 'a', name, 2, 4096, 'migrated', 1 from nodes on conflict do nothing`.execute(db);
    expect((await placedOn('a')).length).toBeGreaterThan(2);
    const pass = await app.cp.services.placement.healthPass(Date.now());
    expect(pass.moves).toBeGreaterThan(0);
    expect(await placedOn('a')).toHaveLength(2);
    expect((await app.cp.services.placement.healthPass(Date.now())).revision).toBeNull();
  });

  it("after every kind of placement change above, the room booked on each node is the sum of its placements' reservations", async () => {
    // The sums are kept by triggers (a new tenant is placed around them): insertions, upserted
    // reservations, moves, a deleted node's cascade and the trims above all went through them.
    await ok('PATCH', '/v1/tenants/a', { reservation: { vcpu: 1.5, memoryMb: 2048 } });
    const db = app.cp.database.db;
    const kept = await sql<{ node_name: string; vcpu: string; memory_mb: string }>`
      select node_name, vcpu::text, memory_mb::text from node_bookings order by node_name`.execute(db);
    const summed = await sql<{ node_name: string; vcpu: string; memory_mb: string }>`
      select n.name as node_name, coalesce(sum(p.reservation_vcpu), 0)::numeric(14, 3)::text as vcpu,
             coalesce(sum(p.reservation_memory_mb), 0)::text as memory_mb
      from nodes n left join placements p on p.node_name = n.name group by n.name order by n.name`.execute(db);
    expect(kept.rows).toEqual(summed.rows);
    expect(summed.rows.some((r) => Number(r.vcpu) > 0)).toBe(true);
  });
  it("when a tenant is short of replicas, then its own placement names the same shortfall as the fleet's view", async () => {
    // Every node but one of a's is too small for it, and a lost its replica on the other: one of two.
    const db = app.cp.database.db;
    const [kept, lost] = await placedOn('a');
    await sql`update nodes set capacity_vcpu = 1 where name <> ${kept!}`.execute(db);
    await sql`delete from placements where tenant_id = 'a' and node_name = ${lost!}`.execute(db);
    const own = await ok('GET', '/v1/tenants/a/placement');
    const fleet = await ok('GET', '/v1/placements');
    const fleetShortfalls = [...fleet.unplaceable, ...fleet.degraded].filter(
      (s: { tenantId: string }) => s.tenantId === 'a',
    );
    expect(own.nodes.map((n: { node: string }) => n.node)).toEqual([kept]);
    expect(fleetShortfalls).toHaveLength(1);
    expect(own.shortfalls).toEqual(fleetShortfalls);
  });
});
