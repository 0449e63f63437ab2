import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type Caller, type TestApp } from '../support/app.js';
import { seedOneVipTenant } from '../support/fixture.js';

let app: TestApp;
let agent: Caller;
beforeAll(async () => {
  app = await startTestApp();
  await seedOneVipTenant(app);
  await app.admin('POST', '/v1/nodes', { name: 'n1', kind: 'nginx', capacity: { vcpu: 2, memoryMb: 2048 } });
  agent = app.as(await app.token('agent', { node: 'n1' }));
});
afterAll(async () => {
  await app?.stop();
});

describe('GET /v1/tenants/{t}/status', () => {
  it('shows a node as not converged, and why, until its agent applies the latest config', async () => {
    const config = (await agent('GET', '/v1/nodes/n1/config')).body;
    const unapplied = await app.admin('GET', '/v1/nodes/n1');
    expect(unapplied.body.status).toMatchObject({
      desiredHash: config.contentHash,
      appliedHash: null,
      converged: false,
    });
    const before = await app.admin('GET', '/v1/tenants/a/status');
    expect(before.status).toBe(200);
    expect(before.body.converged).toBe(false);
    expect(before.body.nodes[0]).toMatchObject({
      node: 'n1',
      converged: false,
      waitingFor: 'agent to apply the latest configuration',
    });

    await agent('POST', '/v1/nodes/n1/status', { event: 'failed', error: 'nginx: [emerg] bind() failed\nsecond line' });
    const failing = await app.admin('GET', '/v1/tenants/a/status');
    expect(failing.body.nodes[0].waitingFor).toBe('agent failed to apply: nginx: [emerg] bind() failed');

    await agent('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: config.contentHash,
      revision: config.revision,
      reloaded: true,
    });
    const after = await app.admin('GET', '/v1/tenants/a/status');
    expect(after.body).toMatchObject({ converged: true, vips: [{ name: 'www', converged: true }] });
    expect(after.body.nodes[0]).toMatchObject({ converged: true, waitingFor: null, appliedRevision: config.revision });
    const node = await app.admin('GET', '/v1/nodes/n1');
    expect(node.body.status).toMatchObject({
      desiredRevision: config.revision,
      desiredHash: config.contentHash,
      appliedHash: config.contentHash,
      converged: true,
      reloadCount: 1,
    });
  });

  it('goes back to not converged after a change, until the node catches up', async () => {
    await app.admin('PATCH', '/v1/tenants/a/vips/www', { timeouts: { clientMs: 9999 } });
    await agent('GET', '/v1/nodes/n1/config');
    const res = await app.admin('GET', '/v1/tenants/a/status');
    expect(res.body.converged).toBe(false);
  });

  it('lists no nodes for a tenant that is not active (it is served nowhere)', async () => {
    await app.admin('POST', '/v1/tenants', { id: 'p', state: 'pending_approval' });
    const res = await app.admin('GET', '/v1/tenants/p/status');
    expect(res.body).toMatchObject({ state: 'pending_approval', nodes: [], converged: true });
  });
});
