import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAPABILITIES } from '../../src/domain/node.js';
import { startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  expect((await app.admin('POST', '/v1/tenants', { id: 'acme' })).status).toBe(201);
});
afterAll(async () => {
  await app?.stop();
});

const lb1 = {
  name: 'lb-1',
  kind: 'haproxy',
  group: 'edge',
  zone: 'eu-west-1a',
  runtimeAddress: { host: '10.0.0.11', port: 9999 },
  capacity: { vcpu: 4, memoryMb: 8192 },
};
const ngx1 = { name: 'ngx-1', kind: 'nginx', capacity: { vcpu: 2.5, memoryMb: 4096 } };

/** Agent secrets handed out at registration, by node. */
const agents = new Map<string, string>();

describe('nodes', () => {
  it('registers a node and its agent token in one write, showing the secret once', async () => {
    const res = await app.admin('POST', '/v1/nodes', lb1);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      ...lb1,
      capabilities: CAPABILITIES.haproxy,
      appliedRevision: null,
      lastHeartbeatAt: null,
      agentToken: expect.stringMatching(/^sy_/),
    });
    expect(res.headers.get('etag')).toBe(`"${res.body.revision}"`);
    agents.set('lb-1', res.body.agentToken);
    const got = await app.admin('GET', '/v1/nodes/lb-1');
    expect(got.status).toBe(200);
    const { agentToken: _secret, ...node } = res.body;
    expect(got.body).toEqual(node);
    const token = await app.database.handle.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('name', '=', 'agent-lb-1')
      .executeTakeFirstOrThrow();
    expect(token).toMatchObject({ role: 'agent', node_name: 'lb-1', tenant_id: null });
    expect(token.secret_hash).not.toContain(res.body.agentToken);
    const audit = await app.database.handle.db
      .selectFrom('audit_events')
      .select(['resource_type', 'action', 'revision'])
      .where('revision', '=', String(res.body.revision))
      .orderBy('id')
      .execute();
    expect(audit.map((a) => `${a.action} ${a.resource_type}`)).toEqual(['create node', 'create token']);
    expect(JSON.stringify(audit)).not.toContain(res.body.agentToken);
  });

  it('applies defaults and the capabilities of the kind', async () => {
    const res = await app.admin('POST', '/v1/nodes', ngx1);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      group: 'default',
      zone: 'default',
      runtimeAddress: null,
      capabilities: CAPABILITIES.nginx,
    });
    expect(res.body.capacity).toEqual({ vcpu: 2.5, memoryMb: 4096 });
    agents.set('ngx-1', res.body.agentToken);
  });

  it('lists nodes by name, with paging', async () => {
    const page1 = await app.admin('GET', '/v1/nodes?limit=1');
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((n: { name: string }) => n.name)).toEqual(['lb-1']);
    expect(page1.body.items[0]).not.toHaveProperty('agentToken');
    const page2 = await app.admin('GET', `/v1/nodes?limit=1&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((n: { name: string }) => n.name)).toEqual(['ngx-1']);
    expect(page2.body.nextCursor).toBeNull();
  });

  it('refuses a duplicate name and a runtime address already in use with 409', async () => {
    const dupName = await app.admin('POST', '/v1/nodes', { ...lb1, runtimeAddress: { host: '10.0.0.99', port: 9999 } });
    expect(dupName.status).toBe(409);
    expect(dupName.body.error.message).toBe("node 'lb-1' already exists");
    const dupAddress = await app.admin('POST', '/v1/nodes', { ...lb1, name: 'lb-2' });
    expect(dupAddress.status).toBe(409);
    expect(dupAddress.body.error.message).toBe("runtime address 10.0.0.11:9999 is already used by node 'lb-1'");
    expect((await app.admin('GET', '/v1/nodes/lb-2')).status).toBe(404);
  });

  it.each([
    ['a negative vCPU capacity', { capacity: { vcpu: -1, memoryMb: 1 } }, 'body.capacity.vcpu'],
    ['a fractional memory size', { capacity: { vcpu: 1, memoryMb: 1.5 } }, 'body.capacity.memoryMb'],
    ['a runtime port out of range', { runtimeAddress: { host: '10.0.0.12', port: 70000 } }, 'body.runtimeAddress.port'],
    [
      'a runtime host that is not an IP',
      { runtimeAddress: { host: 'lb.example.com', port: 9999 } },
      'body.runtimeAddress.host',
    ],
    ['an unknown kind', { kind: 'envoy' }, 'body.kind'],
    ['a name that is not a slug', { name: 'LB 3' }, 'body.name'],
    ['an unknown field', { weight: 3 }, 'body.weight'],
    ['a master CLI port out of range', { masterAddress: { host: '10.0.0.12', port: 0 } }, 'body.masterAddress.port'],
    [
      'a master CLI host that is not an IP',
      { masterAddress: { host: 'lb.example.com', port: 9998 } },
      'body.masterAddress.host',
    ],
    [
      'a master CLI with an unknown field',
      { masterAddress: { host: '10.0.0.12', port: 9998, tls: true } },
      'body.masterAddress.tls',
    ],
    [
      'a master CLI on an nginx node',
      { kind: 'nginx', masterAddress: { host: '10.0.0.13', port: 9998 } },
      'body.masterAddress',
    ],
    [
      'a master CLI on the Runtime API address',
      { runtimeAddress: { host: '10.0.0.12', port: 9999 }, masterAddress: { host: '10.0.0.12', port: 9999 } },
      'body.masterAddress',
    ],
  ])('refuses %s with 400 naming the field', async (_label, override, path) => {
    const res = await app.admin('POST', '/v1/nodes', { ...lb1, name: 'lb-3', runtimeAddress: null, ...override });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    expect((await app.admin('GET', '/v1/nodes/lb-3')).status).toBe(404);
  });

  it('patches with If-Match and answers 412 to a stale version', async () => {
    const current = await app.admin('GET', '/v1/nodes/lb-1');
    const etag = current.headers.get('etag')!;
    const patch = { capacity: { vcpu: 8, memoryMb: 16384 }, runtimeAddress: { host: '10.0.0.21', port: 9999 } };
    const ok = await app.admin('PATCH', '/v1/nodes/lb-1', patch, { 'if-match': etag });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ...patch, kind: 'haproxy', group: 'edge' });
    expect(ok.body.revision).toBeGreaterThan(current.body.revision);
    expect(ok.body).not.toHaveProperty('agentToken');
    const stale = await app.admin('PATCH', '/v1/nodes/lb-1', { zone: 'elsewhere' }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect((await app.admin('GET', '/v1/nodes/lb-1')).body.zone).toBe('eu-west-1a');
  });

  it('does not bump the revision for a patch that changes nothing', async () => {
    const before = await app.admin('GET', '/v1/nodes/lb-1');
    const res = await app.admin('PATCH', '/v1/nodes/lb-1', {
      group: 'edge',
      runtimeAddress: before.body.runtimeAddress,
    });
    expect(res.status).toBe(200);
    expect(res.body.revision).toBe(before.body.revision);
  });

  it('checks a patch against the node kind and the other nodes', async () => {
    const nginx = await app.admin('PATCH', '/v1/nodes/ngx-1', { masterAddress: { host: '10.0.0.30', port: 9999 } });
    expect(nginx.status).toBe(400);
    expect(nginx.body.error.details).toEqual([
      { path: 'body.masterAddress', message: 'nginx nodes have no master CLI' },
    ]);
    const lb2 = await app.admin('POST', '/v1/nodes', {
      ...lb1,
      name: 'lb-2',
      runtimeAddress: { host: '10.0.0.22', port: 9999 },
    });
    expect(lb2.status).toBe(201);
    const clash = await app.admin('PATCH', '/v1/nodes/lb-2', { runtimeAddress: { host: '10.0.0.21', port: 9999 } });
    expect(clash.status).toBe(409);
    expect(clash.body.error.message).toMatch(/already used by node 'lb-1'/);
    const badPort = await app.admin('PATCH', '/v1/nodes/lb-2', { runtimeAddress: { host: '10.0.0.22', port: 0 } });
    expect(badPort.body.error.details[0].path).toBe('body.runtimeAddress.port');
    expect((await app.admin('PATCH', '/v1/nodes/lb-2', { kind: 'nginx' })).body.error.details[0].path).toBe(
      'body.kind',
    );
    expect((await app.admin('PATCH', '/v1/nodes/nope', { zone: 'z' })).status).toBe(404);
  });

  it("keeps a HAProxy node's master CLI address, null unless given, and changes or clears it with PATCH", async () => {
    expect((await app.admin('GET', '/v1/nodes/lb-2')).body.masterAddress).toBeNull();
    const set = await app.admin('PATCH', '/v1/nodes/lb-2', { masterAddress: { host: '10.0.0.22', port: 9998 } });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({
      masterAddress: { host: '10.0.0.22', port: 9998 },
      runtimeAddress: { host: '10.0.0.22', port: 9999 },
    });
    expect((await app.admin('GET', '/v1/nodes/lb-2')).body.masterAddress).toEqual({ host: '10.0.0.22', port: 9998 });
    const same = await app.admin('PATCH', '/v1/nodes/lb-2', { masterAddress: { host: '10.0.0.22', port: 9998 } });
    expect(same.body.revision).toBe(set.body.revision);
    const onRuntime = await app.admin('PATCH', '/v1/nodes/lb-2', { masterAddress: { host: '10.0.0.22', port: 9999 } });
    expect(onRuntime.status).toBe(400);
    expect(onRuntime.body.error.details.map((d: { path: string }) => d.path)).toEqual(['body.masterAddress']);
    const nginx = await app.admin('PATCH', '/v1/nodes/ngx-1', { masterAddress: { host: '10.0.0.30', port: 9998 } });
    expect(nginx.status).toBe(400);
    expect(nginx.body.error.details).toEqual([
      { path: 'body.masterAddress', message: 'nginx nodes have no master CLI' },
    ]);
    const cleared = await app.admin('PATCH', '/v1/nodes/lb-2', { masterAddress: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.masterAddress).toBeNull();
  });

  it('lets an agent read its own node, and nothing else', async () => {
    const agent = app.as(agents.get('lb-1')!);
    const own = await agent('GET', '/v1/nodes/lb-1');
    expect(own.status).toBe(200);
    expect(own.body.name).toBe('lb-1');
    const other = await agent('GET', '/v1/nodes/ngx-1');
    expect(other.status).toBe(404);
    expect(other.body.error.message).toBe("node 'ngx-1' not found");
    expect((await agent('GET', '/v1/nodes')).status).toBe(403);
    expect((await agent('PATCH', '/v1/nodes/lb-1', { zone: 'z' })).status).toBe(403);
    expect((await agent('DELETE', '/v1/nodes/lb-1')).status).toBe(403);
    expect((await agent('POST', '/v1/nodes', { ...ngx1, name: 'ngx-9' })).status).toBe(403);
    for (const path of ['/v1/tenants/acme', '/v1/tenants/acme/certificates', '/v1/tenants/nope/vips']) {
      expect((await agent('GET', path)).status).toBe(404);
    }
  });

  it('lets an operator read the fleet but not change it', async () => {
    const operator = app.as(await app.token('operator'));
    expect((await operator('GET', '/v1/nodes')).status).toBe(200);
    expect((await operator('GET', '/v1/nodes/lb-1')).status).toBe(200);
    expect((await operator('POST', '/v1/nodes', { ...ngx1, name: 'ngx-2' })).status).toBe(403);
    expect((await operator('PATCH', '/v1/nodes/lb-1', { zone: 'z' })).status).toBe(403);
    expect((await operator('DELETE', '/v1/nodes/lb-1')).status).toBe(403);
  });

  it('keeps tenant tokens out of the fleet with 403', async () => {
    const tenantAdmin = app.as(await app.token('tenant-admin', { tenant: 'acme' }));
    expect((await tenantAdmin('GET', '/v1/nodes')).status).toBe(403);
    expect((await tenantAdmin('GET', '/v1/nodes/lb-1')).status).toBe(403);
    expect((await tenantAdmin('POST', '/v1/nodes', { ...ngx1, name: 'ngx-3' })).status).toBe(403);
    expect((await app.as(await app.token('registrar'))('GET', '/v1/nodes/lb-1')).status).toBe(403);
  });

  it('answers 401 without a token', async () => {
    expect((await app.as(null)('GET', '/v1/nodes')).status).toBe(401);
  });

  it('deletes a node with If-Match, taking its agent token with it', async () => {
    const current = await app.admin('GET', '/v1/nodes/ngx-1');
    expect((await app.admin('DELETE', '/v1/nodes/ngx-1', undefined, { 'if-match': '"1"' })).status).toBe(412);
    const res = await app.admin('DELETE', '/v1/nodes/ngx-1', undefined, { 'if-match': current.headers.get('etag')! });
    expect(res.status).toBe(200);
    expect(res.body.revision).toBeGreaterThan(current.body.revision);
    expect((await app.admin('GET', '/v1/nodes/ngx-1')).status).toBe(404);
    expect((await app.as(agents.get('ngx-1')!)('GET', '/v1/nodes/ngx-1')).status).toBe(401);
    const audit = await app.database.handle.db
      .selectFrom('audit_events')
      .selectAll()
      .where('resource_type', '=', 'node')
      .where('action', '=', 'delete')
      .executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ resource_id: 'ngx-1', tenant_id: null, after: null });
    expect((audit.before as { name: string }).name).toBe('ngx-1');
  });

  it('lets a node be registered again under its old name, with a new agent token', async () => {
    const res = await app.admin('POST', '/v1/nodes', ngx1);
    expect(res.status).toBe(201);
    expect(res.body.agentToken).not.toBe(agents.get('ngx-1'));
    expect((await app.as(res.body.agentToken)('GET', '/v1/nodes/ngx-1')).status).toBe(200);
  });

  it('replays an Idempotency-Key registration without the secret and without a second node', async () => {
    const headers = { 'idempotency-key': 'register-lb-4' };
    const body = { ...lb1, name: 'lb-4', runtimeAddress: { host: 'fd00::4', port: 9999 } };
    const first = await app.admin('POST', '/v1/nodes', body, headers);
    expect(first.status).toBe(201);
    expect(first.body.runtimeAddress).toEqual({ host: 'fd00::4', port: 9999 });
    const again = await app.admin('POST', '/v1/nodes', body, headers);
    expect(again.status).toBe(201);
    expect(again.body).toEqual({ ...first.body, agentToken: null });
  });
});
