import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type Caller, type TestApp } from '../support/app.js';
import { seedOneVipTenant } from '../support/fixture.js';

/** A loopback port nothing listens on: the plan's Runtime API read fails fast, which is beside the point here. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("the plan's reload reasons on a node that took many runtime-only changes", () => {
  let app: TestApp;
  let agent: Caller;

  /** The agent's part: fetch the node's config (the build stores a version) and report it applied. */
  const applyLatest = async () => {
    const config = (await agent('GET', '/v1/nodes/n1/config')).body;
    const res = await agent('POST', '/v1/nodes/n1/status', {
      event: 'applied',
      contentHash: config.contentHash,
      revision: config.revision,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  };

  beforeAll(async () => {
    app = await startTestApp();
    await seedOneVipTenant(app);
    const node = await app.admin('POST', '/v1/nodes', {
      name: 'n1',
      kind: 'haproxy',
      capacity: { vcpu: 2, memoryMb: 2048 },
      configDir: '/etc/sy-n1',
      runtimeAddress: { host: '127.0.0.1', port: await closedPort() },
    });
    expect(node.status, JSON.stringify(node.body)).toBe(201);
    agent = app.as(await app.token('agent', { node: 'n1' }));
    await applyLatest();
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('when more runtime-only versions than are kept follow the last structural one, then a new VIP is still named as the reason for the reload', async () => {
    // Each weight change stores a version with the running structure (and no parts of its own);
    // more of them than the 20 versions kept push the one that carries the parts out of the window.
    for (let i = 0; i < 25; i++) {
      const res = await app.admin('PATCH', '/v1/tenants/a/pools/web/members/m1', { weight: 1 + i });
      expect(res.status).toBe(200);
      await applyLatest();
    }
    const vip = await app.admin('POST', '/v1/tenants/a/vips', {
      name: 'extra',
      address: '192.168.9.2',
      port: 80,
      protocol: 'http',
      defaultPool: 'web',
    });
    expect(vip.status).toBe(201);
    const plan = (await app.admin('GET', '/v1/plan')).body.nodes.find((n: { node: string }) => n.node === 'n1');
    expect(plan.reload.pending).toBe(true);
    expect(plan.reload.reasons).toContain('VIP a/extra added');
  });
});
