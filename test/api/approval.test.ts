import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type Caller, type TestApp } from '../support/app.js';

let app: TestApp;
let registrar: Caller;

beforeAll(async () => {
  app = await startTestApp({ SWITCHYARD_AUTO_APPROVE_VCPU: '2', SWITCHYARD_AUTO_APPROVE_MEMORY_MB: '4096' });
  registrar = app.as(await app.token('registrar'));
  await app.admin('POST', '/v1/nodes', { name: 'edge-1', kind: 'haproxy', capacity: { vcpu: 16, memoryMb: 32768 } });
});
afterAll(async () => {
  await app?.stop();
});

const big = { vcpu: 8, memoryMb: 16384 };
const small = { vcpu: 1, memoryMb: 2048 };

describe('approval workflow', () => {
  it('auto-approves a registrar’s registration within the policy, saying why', async () => {
    const res = await registrar('POST', '/v1/tenants', { id: 'small', reservation: small });
    expect(res.status).toBe(201);
    expect(res.body.state).toBe('active');
    expect(res.body.approval).toMatchObject({
      pending: null,
      decidedBy: 'policy',
      reason: expect.stringContaining('2 vCPU / 4096 MB'),
    });
  });

  it('holds a registration above the policy as pending_approval: it renders nothing until approved', async () => {
    const res = await registrar('POST', '/v1/tenants', { id: 'big', reservation: big });
    expect(res.body.state).toBe('pending_approval');
    await registrar('POST', '/v1/tenants/big/pools', { name: 'web' });
    await registrar('POST', '/v1/tenants/big/vips', {
      name: 'www',
      address: '192.168.7.7',
      port: 80,
      protocol: 'http',
      defaultPool: 'web',
    });
    const config = await app.admin('GET', '/v1/nodes/edge-1/config');
    expect(config.body.files['haproxy.cfg']).not.toContain('fe_big_www');

    expect((await registrar('POST', '/v1/tenants/big/approve', {})).status).toBe(403);
    const approved = await app.admin('POST', '/v1/tenants/big/approve', {
      reason: 'capacity planned in ticket OPS-42',
    });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({
      state: 'active',
      approval: { decidedBy: 'bootstrap-admin', reason: 'capacity planned in ticket OPS-42' },
    });
    const after = await app.admin('GET', '/v1/nodes/edge-1/config');
    expect(after.body.files['haproxy.cfg']).toContain('fe_big_www');
  });

  it('rejects with a reason; the decision stays visible and nothing renders', async () => {
    await registrar('POST', '/v1/tenants', { id: 'huge', reservation: { vcpu: 64, memoryMb: 131072 } });
    const noReason = await app.admin('POST', '/v1/tenants/huge/reject', {});
    expect(noReason.status).toBe(400);
    expect(noReason.body.error.details[0].path).toBe('body.reason');
    const res = await app.admin('POST', '/v1/tenants/huge/reject', { reason: 'no capacity in this region' });
    expect(res.body).toMatchObject({ state: 'rejected', approval: { reason: 'no capacity in this region' } });
    expect((await app.admin('POST', '/v1/tenants/huge/approve', {})).status).toBe(409);
  });

  it('makes a registrar’s raise above the policy wait, keeping the current reservation meanwhile', async () => {
    const res = await registrar('PATCH', '/v1/tenants/small', { reservation: big, limit: big });
    expect(res.status).toBe(200);
    expect(res.body.reservation).toEqual(small);
    expect(res.body.approval.pending).toMatchObject({
      reservation: big,
      limit: big,
      requestedBy: expect.stringContaining('registrar'),
    });
    const approved = await app.admin('POST', '/v1/tenants/small/approve', {});
    expect(approved.body.reservation).toEqual(big);
    expect(approved.body.approval.pending).toBeNull();
  });

  it('applies a registrar’s decrease at once; state and weight stay with operators', async () => {
    const res = await registrar('PATCH', '/v1/tenants/small', { reservation: small, limit: small });
    expect(res.body.reservation).toEqual(small);
    expect(res.body.approval.pending).toBeNull();
    expect((await registrar('PATCH', '/v1/tenants/small', { state: 'active' })).status).toBe(403);
    expect((await registrar('PATCH', '/v1/tenants/small', { weight: 1000 })).status).toBe(403);
  });

  it('records every decision in the audit log', async () => {
    const res = await app.admin('GET', '/v1/audit?resourceType=tenant');
    const decisions = res.body.items
      .filter((e: any) => e.action === 'approve' || e.action === 'reject')
      .map((e: any) => `${e.action} ${e.resourceId}`);
    expect(decisions.sort()).toEqual(['approve big', 'approve small', 'reject huge']);
  });
});
