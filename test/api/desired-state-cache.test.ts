import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDesiredState, type DesiredState } from '../../src/db/desired-state-repository.js';
import { DesiredStateCache } from '../../src/services/config/desired-state-cache.js';
import { TenantMemo } from '../../src/services/config/tenant-memo.js';
import { startTestApp, type TestApp } from '../support/app.js';

/**
 * The desired state kept in memory and brought forward by reading only the tenants written since
 * must always equal a whole read of the same revision, whatever the writes were: every kind of
 * write through the API, then compared with `loadDesiredState`.
 */
let app: TestApp;
let cache: DesiredStateCache;

const ok = async (method: string, path: string, body?: unknown) => {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path} ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
};

const revisionNow = async () =>
  Number(
    (await app.database.handle.db.selectFrom('revision_counter').select('revision').executeTakeFirstOrThrow()).revision,
  );

/** Comparable form: tenants in order, placements sorted. */
const plain = (s: DesiredState) => ({
  revision: s.revision,
  tenants: JSON.parse(JSON.stringify(s.tenants)),
  placements: Object.fromEntries([...s.placements].sort(([a], [b]) => (a < b ? -1 : 1))),
});

async function expectCurrent(): Promise<DesiredState> {
  const kept = await cache.get(revisionNow);
  const whole = await loadDesiredState(app.database.handle.db);
  expect(plain(kept)).toEqual(plain(whole));
  return kept;
}

async function tenant(id: string, vip: string): Promise<void> {
  await ok('POST', '/v1/tenants', { id, reservation: { vcpu: 0.1, memoryMb: 64 } });
  await ok('POST', `/v1/tenants/${id}/pools`, { name: 'web' });
  await ok('PUT', `/v1/tenants/${id}/pools/web/members`, {
    members: [
      { name: 'm1', address: '10.0.0.1', port: 80 },
      { name: 'm2', address: '10.0.0.2', port: 80 },
    ],
  });
  await ok('POST', `/v1/tenants/${id}/vips`, {
    name: 'www',
    address: vip,
    port: 80,
    protocol: 'http',
    defaultPool: 'web',
  });
}

beforeAll(async () => {
  app = await startTestApp({ SWITCHYARD_RECONCILE: 'false' });
  await ok('POST', '/v1/nodes', {
    name: 'edge-1',
    kind: 'haproxy',
    capacity: { vcpu: 8, memoryMb: 16384 },
    configDir: '/etc/sy1',
  });
  await ok('POST', '/v1/nodes', {
    name: 'edge-2',
    kind: 'haproxy',
    capacity: { vcpu: 8, memoryMb: 16384 },
    configDir: '/etc/sy2',
  });
  for (const [i, id] of ['a', 'b', 'c'].entries()) await tenant(id, `192.0.2.${i + 1}`);
  cache = new DesiredStateCache(app.database.handle.db, new TenantMemo());
});

afterAll(async () => {
  await app?.stop();
});

describe('the desired state kept in memory', () => {
  it('reads whole once, then only what changed, and always equals a whole read', async () => {
    const first = await expectCurrent();
    expect(cache.reads).toEqual({ whole: 1, changes: 0 });

    await ok('PATCH', '/v1/tenants/b/pools/web/members/m1', { weight: 42 });
    const second = await expectCurrent();
    expect(cache.reads).toEqual({ whole: 1, changes: 1 });
    // Unchanged tenants keep their objects (what every memo hangs on); the written one is new.
    expect(second.tenants.find((t) => t.tenant.id === 'a')).toBe(first.tenants.find((t) => t.tenant.id === 'a'));
    expect(second.tenants.find((t) => t.tenant.id === 'b')).not.toBe(first.tenants.find((t) => t.tenant.id === 'b'));
  });

  it('follows new, changed, deleted and re-created tenants, deleted members and VIPs, and moved VIPs', async () => {
    await tenant('d', '192.0.2.4');
    await expectCurrent();
    await ok('DELETE', '/v1/tenants/a/pools/web/members/m2');
    await ok('PATCH', '/v1/tenants/c/vips/www', { port: 8080 });
    await expectCurrent();
    await ok('PATCH', '/v1/tenants/b', { labels: { team: 'shop' } });
    await ok('DELETE', '/v1/tenants/d/vips/www');
    await expectCurrent();
    await ok('DELETE', '/v1/tenants/d');
    expect((await expectCurrent()).tenants.map((t) => t.tenant.id)).toEqual(['a', 'b', 'c']);
    await tenant('d', '192.0.2.5'); // the same id again: a new tenant, read as such
    expect((await expectCurrent()).tenants.map((t) => t.tenant.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(cache.reads.whole).toBe(1);
  });

  it('reads whole again after a change that names no tenant (a node), which can move any placement', async () => {
    await ok('DELETE', '/v1/nodes/edge-2');
    const state = await expectCurrent();
    expect(cache.reads.whole).toBe(2);
    expect([...state.placements.values()].every((nodes) => nodes.length === 1 && nodes[0] === 'edge-1')).toBe(true);
  });

  it('answers a revision it already holds without a read', async () => {
    const before = { ...cache.reads };
    await cache.get(revisionNow, await revisionNow());
    expect(cache.reads).toEqual(before);
  });
  it('reads whole every ten minutes in the background: the read asked for takes the changes, and what lands still equals a whole read, with writes made meanwhile and unchanged tenants kept', async () => {
    let now = 0;
    const clocked = new DesiredStateCache(app.database.handle.db, new TenantMemo(), () => now);
    const first = await clocked.get(revisionNow);
    expect(clocked.reads).toEqual({ whole: 1, changes: 0 });
    now = 10 * 60_000;
    await ok('PATCH', '/v1/tenants/b/pools/web/members/m1', { weight: 7 });
    const second = await clocked.get(revisionNow);
    expect(clocked.reads).toEqual({ whole: 2, changes: 1 }); // the whole one beside it
    expect(plain(second)).toEqual(plain(await loadDesiredState(app.database.handle.db)));
    await ok('PATCH', '/v1/tenants/c/pools/web/members/m1', { weight: 9 });
    await clocked.refreshed();
    const third = await clocked.get(revisionNow);
    expect(plain(third)).toEqual(plain(await loadDesiredState(app.database.handle.db)));
    expect(third.tenants.find((t) => t.tenant.id === 'a')).toBe(first.tenants.find((t) => t.tenant.id === 'a'));
    // The next safety net is due ten minutes after this one began.
    await ok('PATCH', '/v1/tenants/c/pools/web/members/m1', { weight: 11 });
    await clocked.get(revisionNow);
    expect(clocked.reads.whole).toBe(2);
  });
});
