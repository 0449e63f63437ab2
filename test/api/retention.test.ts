import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { RetentionJob } from '../../src/jobs/retention.js';
import { createLogger } from '../../src/logger.js';
import { startTestApp, type TestApp } from '../support/app.js';

describe('retention of the append-only tables', () => {
  let app: TestApp;
  let sqlClient: pg.Client;
  const count = async (query: string) => Number((await sqlClient.query(query)).rows[0].n);

  beforeEach(async () => {
    app = await startTestApp();
    // The leader's own passes (a year / 30 days by default) are stopped once it leads: each test runs its own.
    await vi.waitFor(() => expect(app.cp.leader.isLeader).toBe(true), { timeout: 2000, interval: 10 });
    await app.cp.retention.stop();
    sqlClient = new pg.Client({ connectionString: app.database.url });
    await sqlClient.connect();
    // Recent history through the API: audit events for both writes.
    await app.admin('POST', '/v1/tenants', { id: 't1' });
    await app.admin('POST', '/v1/nodes', { name: 'n1', kind: 'haproxy', capacity: { vcpu: 2, memoryMb: 2048 } });
    // Old rows as years of use leave them: more audit events than one delete batch (5,000) takes.
    await sqlClient.query(`
      insert into audit_events (at, revision, actor, request_id, action, resource_type, resource_id)
      select now() - interval '40 days' - n * interval '1 minute', 1, 'admin', 'r' || n, 'update', 'tenant', 't1'
      from generate_series(1, 12000) n`);
    await sqlClient.query(`
      insert into allocation_history (tenant_id, node_name, dimension, from_value, to_value, reason, detail, revision, at)
      select 't1', 'n1', 'connections', 10, 20, 'demand', 'grew', 1, now() - d * interval '1 day'
      from unnest(array[1, 2, 8, 9, 10]) d`);
    await sqlClient.query(`
      insert into idempotency_keys (token_id, key, method, path, request_hash, created_at)
      select gen_random_uuid(), 'k' || h, 'POST', '/v1/tenants', 'x', now() - h * interval '1 hour'
      from unnest(array[1, 23, 25, 48]) h`);
  });

  afterEach(async () => {
    await sqlClient.end();
    await app.stop();
  });

  it('deletes what is older than each table keeps, in batches, and nothing newer', async () => {
    const job = new RetentionJob(
      { db: app.cp.database.db, logger: createLogger('silent') },
      { auditDays: 30, allocationHistoryDays: 7 },
    );
    expect(await job.pass()).toEqual({ audit_events: 12000, allocation_history: 3, idempotency_keys: 2 });
    expect(await count(`select count(*) n from audit_events where at < now() - interval '30 days'`)).toBe(0);
    expect(await count(`select count(*) n from allocation_history`)).toBe(2); // 1 and 2 days old
    expect(await count(`select count(*) n from idempotency_keys`)).toBe(2); // 1 and 23 hours old: still replayable
    // The recent audit log is intact and served as before.
    const audit = await app.admin('GET', '/v1/audit?limit=100');
    expect(audit.status).toBe(200);
    expect(audit.body.items.map((e: { resourceId: string }) => e.resourceId)).toEqual(
      expect.arrayContaining(['t1', 'n1']),
    );
    // A second pass finds nothing left to do.
    expect(await job.pass()).toEqual({ audit_events: 0, allocation_history: 0, idempotency_keys: 0 });
  });

  it('keeps a table forever when its days are 0; expired idempotency keys still go', async () => {
    const job = new RetentionJob(
      { db: app.cp.database.db, logger: createLogger('silent') },
      { auditDays: 0, allocationHistoryDays: 0 },
    );
    expect(await job.pass()).toEqual({ idempotency_keys: 2 });
    expect(await count(`select count(*) n from audit_events`)).toBeGreaterThanOrEqual(12002);
    expect(await count(`select count(*) n from allocation_history`)).toBe(5);
  });
});

describe('retention settings', () => {
  it('default to a year of audit log and 30 days of allocation history', () => {
    expect(loadConfig({}).retention).toEqual({ auditDays: 365, allocationHistoryDays: 30 });
    expect(
      loadConfig({ SWITCHYARD_AUDIT_RETENTION_DAYS: '0', SWITCHYARD_ALLOCATION_HISTORY_RETENTION_DAYS: '90' })
        .retention,
    ).toEqual({ auditDays: 0, allocationHistoryDays: 90 });
  });

  it('refuses a bad value, naming the variable', () => {
    expect(() => loadConfig({ SWITCHYARD_AUDIT_RETENTION_DAYS: '-1' })).toThrow(ConfigError);
    expect(() => loadConfig({ SWITCHYARD_ALLOCATION_HISTORY_RETENTION_DAYS: 'soon' })).toThrow(
      /SWITCHYARD_ALLOCATION_HISTORY_RETENTION_DAYS/,
    );
  });
});
