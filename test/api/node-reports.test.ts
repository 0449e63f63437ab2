import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type Caller, type TestApp } from '../support/app.js';
import { seedOneVipTenant } from '../support/fixture.js';

/** A loopback port nothing listens on: a Runtime API there refuses every connection. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('an agent reports only config versions built for its node', () => {
  let app: TestApp;
  let n1: Caller;
  let n2: Caller;
  beforeAll(async () => {
    app = await startTestApp();
    await seedOneVipTenant(app);
    await app.admin('POST', '/v1/nodes', {
      name: 'n1',
      kind: 'nginx',
      capacity: { vcpu: 2, memoryMb: 2048 },
      configDir: '/etc/sy-n1',
    });
    await app.admin('POST', '/v1/nodes', {
      name: 'n2',
      kind: 'nginx',
      capacity: { vcpu: 2, memoryMb: 2048 },
      configDir: '/etc/sy-n2',
    });
    n1 = app.as(await app.token('agent', { node: 'n1' }));
    n2 = app.as(await app.token('agent', { node: 'n2' }));
  });
  afterAll(async () => {
    await app?.stop();
  });

  /** The node and the audit trail, to show a refused report changed neither. */
  const snapshot = async () => ({
    node: (await app.admin('GET', '/v1/nodes/n1')).body,
    audit: (await app.admin('GET', '/v1/audit?limit=500')).body.items.length,
  });

  it('when an applied report names a content hash never built for the node, then it is refused with 409 naming contentHash and nothing changes', async () => {
    const config = (await n1('GET', '/v1/nodes/n1/config')).body;
    const before = await snapshot();
    const res = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: 'ab'.repeat(32),
      revision: config.revision,
      reloaded: true,
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain(
      `contentHash ${'ab'.repeat(32)} is not a config version built for node 'n1'`,
    );
    expect(res.body.error.details).toEqual({ field: 'contentHash' });
    const after = await snapshot();
    expect(after.node.appliedRevision).toBe(before.node.appliedRevision);
    expect(after.node.status).toMatchObject({
      appliedHash: before.node.status.appliedHash,
      reloadCount: before.node.status.reloadCount,
    });
    expect(after.audit).toBe(before.audit);
  });

  it('when an applied report names a revision above the one its version stands for (above the global one), then it is refused with 409 naming revision', async () => {
    const config = (await n1('GET', '/v1/nodes/n1/config')).body;
    const before = await snapshot();
    const res = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: config.contentHash,
      revision: 999_999,
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain('revision 999999 is above');
    expect(res.body.error.details).toEqual({ field: 'revision' });
    const after = await snapshot();
    expect(after.node.appliedRevision).toBe(before.node.appliedRevision);
    expect(after.node.status.appliedHash).toBe(before.node.status.appliedHash);
    expect(after.audit).toBe(before.audit);
    // The plan does not show a reload for a configuration "no longer stored" either.
    const plan = (await app.admin('GET', '/v1/plan')).body.nodes.find((n: any) => n.node === 'n1');
    expect(plan.reload.reasons.join()).not.toContain('no longer stored');
  });

  it('when an applied report names a revision below the one its version was first built at, then it is refused with 409 naming revision', async () => {
    await app.admin('PATCH', '/v1/tenants/a/pools/web/members/m1', { weight: 7 });
    const config = (await n1('GET', '/v1/nodes/n1/config')).body;
    const before = await snapshot();
    const res = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: config.contentHash,
      revision: config.revision - 1,
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain(`revision ${config.revision - 1} is below ${config.revision}`);
    expect(res.body.error.details).toEqual({ field: 'revision' });
    const after = await snapshot();
    expect(after.node.appliedRevision).toBe(before.node.appliedRevision);
    expect(after.audit).toBe(before.audit);
    const ok = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: config.contentHash,
      revision: config.revision,
    });
    expect(ok.status).toBe(200);
  });

  it('when an applied report names a version built for another node, then it is refused with 409 naming contentHash', async () => {
    const other = (await n2('GET', '/v1/nodes/n2/config')).body;
    const own = (await n1('GET', '/v1/nodes/n1/config')).body;
    expect(other.contentHash).not.toBe(own.contentHash);
    const res = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: other.contentHash,
      revision: other.revision,
    });
    expect(res.status).toBe(409);
    expect(res.body.error.details).toEqual({ field: 'contentHash' });
    expect((await app.admin('GET', '/v1/nodes/n1')).body.status.appliedHash).not.toBe(other.contentHash);
  });

  it('when a failed report names an unknown version, then it is refused; naming none or a stored one, it is recorded', async () => {
    const config = (await n1('GET', '/v1/nodes/n1/config')).body;
    const unknown = await n1('POST', '/v1/nodes/n1/status', {
      event: 'failed',
      contentHash: 'cd'.repeat(32),
      revision: config.revision,
      error: 'made up',
    });
    expect(unknown.status).toBe(409);
    expect(unknown.body.error.details).toEqual({ field: 'contentHash' });
    const above = await n1('POST', '/v1/nodes/n1/status', {
      event: 'failed',
      revision: config.revision + 1000,
      error: 'made up',
    });
    expect(above.status).toBe(409);
    expect(above.body.error.details).toEqual({ field: 'revision' });
    expect((await app.admin('GET', '/v1/nodes/n1')).body.status.lastError).toBeNull();
    const named = await n1('POST', '/v1/nodes/n1/status', {
      event: 'failed',
      contentHash: config.contentHash,
      revision: config.revision,
      error: 'nginx: [emerg] real',
    });
    expect(named.status).toBe(200);
    expect(named.body.status.lastError).toBe('nginx: [emerg] real');
    expect((await n1('POST', '/v1/nodes/n1/status', { event: 'failed', error: 'no version named' })).status).toBe(200);
  });

  it('when failed listeners are reported with another event or malformed, then it is a 400 naming the field; a listener of no VIP holds nobody', async () => {
    const config = (await n1('GET', '/v1/nodes/n1/config')).body;
    const applied = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: config.contentHash,
      revision: config.revision,
      failedListeners: [{ address: '192.0.2.1', port: 80, reason: 'in-use' }],
    });
    expect(applied.status).toBe(400);
    expect(JSON.stringify(applied.body.error.details)).toContain('body.failedListeners');
    const bad = await n1('POST', '/v1/nodes/n1/status', {
      event: 'failed',
      error: 'x',
      failedListeners: [{ address: '192.0.2.1;rm', port: 80, reason: 'in-use' }],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.error.details)).toContain('body.failedListeners.0.address');
    const reason = await n1('POST', '/v1/nodes/n1/status', {
      event: 'failed',
      error: 'x',
      failedListeners: [{ address: '192.0.2.1', port: 80, reason: 'busy' }],
    });
    expect(reason.status).toBe(400);
    // 198.51.100.1:9 is no VIP of a tenant placed on n1: the failure stays node-wide and nobody is held.
    const stray = await n1('POST', '/v1/nodes/n1/status', {
      event: 'failed',
      contentHash: config.contentHash,
      revision: config.revision,
      error: 'bind failed',
      failedListeners: [{ address: '198.51.100.1', port: 9, reason: 'in-use' }],
    });
    expect(stray.status).toBe(200);
    expect((await n1('GET', '/v1/nodes/n1/config')).body.heldTenants).toEqual([]);
  });

  it('when an agent reports the latest version, or an older one still stored (it is behind), then it is recorded', async () => {
    const older = (await n1('GET', '/v1/nodes/n1/config')).body;
    const write = await app.admin('PATCH', '/v1/tenants/a/vips/www', { timeouts: { clientMs: 12_345 } });
    expect(write.status).toBe(200);
    const latest = (await n1('GET', '/v1/nodes/n1/config')).body;
    expect(latest.contentHash).not.toBe(older.contentHash);

    const behind = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: older.contentHash,
      revision: older.revision,
      reloaded: true,
    });
    expect(behind.status).toBe(200);
    expect(behind.body).toMatchObject({
      appliedRevision: older.revision,
      status: { appliedHash: older.contentHash, converged: false, cause: 'not_applied' },
    });

    const current = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: latest.contentHash,
      revision: latest.revision,
      reloaded: true,
    });
    expect(current.status).toBe(200);
    expect(current.body).toMatchObject({
      appliedRevision: latest.revision,
      status: { appliedHash: latest.contentHash, converged: true, waitingFor: null, cause: null },
    });
  });

  it('when a write leaves the node’s files alone, then a report of the revision the agent fetched before it is still accepted', async () => {
    const fetched = (await n1('GET', '/v1/nodes/n1/config')).body;
    // A tenant that is not active is served nowhere: the node's version now stands for a newer revision.
    expect((await app.admin('POST', '/v1/tenants', { id: 'quiet', state: 'pending_approval' })).status).toBe(201);
    const advanced = (await n1('GET', '/v1/nodes/n1/config')).body;
    expect(advanced.contentHash).toBe(fetched.contentHash);
    expect(advanced.revision).toBeGreaterThan(fetched.revision);
    const res = await n1('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: fetched.contentHash,
      revision: fetched.revision,
    });
    expect(res.status).toBe(200);
    expect(res.body.appliedRevision).toBe(fetched.revision);
  });
});

describe('a node whose agent is silent or whose Runtime API fails is not converged in any view', () => {
  let app: TestApp;
  let edge: Caller;
  let ngx: Caller;
  beforeAll(async () => {
    // One-second heartbeats: an agent is silent after 3 s. The reconciler pushes to the Runtime API.
    app = await startTestApp({
      SWITCHYARD_HEARTBEAT_INTERVAL_S: '1',
      SWITCHYARD_RECONCILE: 'true',
      SWITCHYARD_RECONCILE_INTERVAL_MS: '200',
    });
    await seedOneVipTenant(app);
    const port = await closedPort();
    const registered = await app.admin('POST', '/v1/nodes', {
      name: 'edge',
      kind: 'haproxy',
      runtimeAddress: { host: '127.0.0.1', port },
      capacity: { vcpu: 2, memoryMb: 2048 },
    });
    expect(registered.status).toBe(201);
    expect(
      (await app.admin('POST', '/v1/nodes', { name: 'ngx', kind: 'nginx', capacity: { vcpu: 2, memoryMb: 2048 } }))
        .status,
    ).toBe(201);
    edge = app.as(await app.token('agent', { node: 'edge' }));
    ngx = app.as(await app.token('agent', { node: 'ngx' }));
  });
  afterAll(async () => {
    await app?.stop();
  });

  /** Every view of one node: its own status, the tenant's status, the plan and the metrics. */
  async function views(node: string) {
    const [own, status, plan, metrics] = await Promise.all([
      app.admin('GET', `/v1/nodes/${node}`),
      app.admin('GET', '/v1/tenants/a/status'),
      app.admin('GET', '/v1/plan'),
      app.admin('GET', '/metrics'),
    ]);
    const line = (metrics.body as string)
      .split('\n')
      .find((l) => l.startsWith(`switchyard_node_converged{node="${node}",`));
    return {
      node: own.body.status,
      tenant: { converged: status.body.converged, node: status.body.nodes.find((n: any) => n.node === node) },
      plan: plan.body.nodes.find((n: any) => n.node === node),
      metric: line,
    };
  }

  /** The agent applies what it is served (and so heartbeats). */
  async function apply(agent: Caller, node: string): Promise<void> {
    const config = (await agent('GET', `/v1/nodes/${node}/config`)).body;
    const res = await agent('POST', `/v1/nodes/${node}/status`, {
      event: 'applied',
      contentHash: config.contentHash,
      revision: config.revision,
    });
    expect(res.status).toBe(200);
  }

  it('when the agent stops heartbeating for more than 3 intervals, then node, tenant status, plan and metrics say not converged and why', async () => {
    await apply(ngx, 'ngx');
    expect((await app.admin('GET', '/v1/nodes/ngx')).body.status).toMatchObject({ converged: true, cause: null });
    await vi.waitFor(
      async () => {
        const v = await views('ngx');
        expect(v.node).toMatchObject({ converged: false, cause: 'agent_silent' });
        expect(v.node.waitingFor).toMatch(/no heartbeat for \d+ s \(more than 3 × 1 s\)/);
        expect(v.tenant.converged).toBe(false);
        expect(v.tenant.node).toMatchObject({
          converged: false,
          cause: 'agent_silent',
          waitingFor: expect.stringMatching(/no heartbeat/),
        });
        expect(v.plan).toMatchObject({
          converged: false,
          cause: 'agent_silent',
          waitingFor: expect.stringMatching(/no heartbeat/),
        });
        expect(v.metric).toBe('switchyard_node_converged{node="ngx",reason="agent_silent"} 0');
      },
      { timeout: 15_000, interval: 250 },
    );
    // A heartbeat brings it back.
    await ngx('POST', '/v1/nodes/ngx/status', { event: 'heartbeat' });
    const back = await views('ngx');
    expect(back.node).toMatchObject({ converged: true, waitingFor: null });
    expect(back.plan).toMatchObject({ converged: true, waitingFor: null, cause: null });
    expect(back.metric).toBe('switchyard_node_converged{node="ngx",reason=""} 1');
  });

  it('when the Runtime API fails, then node, tenant status, plan and metrics say not converged and why, though the agent applied the latest config', async () => {
    await vi.waitFor(
      async () => {
        await apply(edge, 'edge');
        const v = await views('edge');
        expect(v.node.appliedHash).toBe(v.node.desiredHash);
        expect(v.node.runtime.error).toMatch(/ECONNREFUSED|refused/i);
        expect(v.node).toMatchObject({ converged: false, cause: 'runtime_api_failing' });
        expect(v.node.waitingFor).toContain(v.node.runtime.error);
        expect(v.tenant.converged).toBe(false);
        expect(v.tenant.node).toMatchObject({
          converged: false,
          cause: 'runtime_api_failing',
          waitingFor: v.node.waitingFor,
        });
        expect(v.plan).toMatchObject({ converged: false, cause: 'runtime_api_failing', waitingFor: v.node.waitingFor });
        expect(v.metric).toBe('switchyard_node_converged{node="edge",reason="runtime_api_failing"} 0');
      },
      { timeout: 15_000, interval: 250 },
    );
  });
});
