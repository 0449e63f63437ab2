import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LeaderElector } from '../../src/jobs/leader.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let database: TestDatabase;
const electors: LeaderElector[] = [];
const logger = createLogger('silent');

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  for (const e of electors) await e.stop();
  await database?.drop();
});

/** Leader sessions whose last statement, a try for the lock, has finished (pg_stat_activity). */
async function finishedTries(): Promise<number> {
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where application_name = 'switchyard-leader' and datname = current_database()
         and state = 'idle' and query like 'select pg_try_advisory_lock%'`,
    );
    return rows[0]!.n;
  } finally {
    await admin.end();
  }
}

const WAIT = { timeout: 5000, interval: 20 };

describe('leader election', () => {
  it('elects exactly one of two replicas, and the other takes over within one interval when the leader dies', async () => {
    const a = new LeaderElector(database.url, logger, 200);
    const b = new LeaderElector(database.url, logger, 200);
    electors.push(a, b);
    a.start();
    await vi.waitFor(() => expect(a.isLeader).toBe(true), WAIT);
    b.start();
    // Both sessions have asked for the lock: b has tried while a held it.
    await expect.poll(finishedTries, WAIT).toBe(2);
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);

    // Kill the leader's connection as a crash or a network partition would.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const killedAt = Date.now();
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'switchyard-leader' and datname = current_database()
         and pid in (select l.pid from pg_locks l join pg_database d on d.oid = l.database
                     where l.locktype = 'advisory' and l.granted and d.datname = current_database())`,
    );
    await admin.end();
    await vi.waitFor(() => expect(b.isLeader).toBe(true), WAIT);
    expect(Date.now() - killedAt).toBeLessThan(2000);
    await vi.waitFor(() => expect(a.isLeader).toBe(false), WAIT);
  });

  it('stepping down releases the lock at once', async () => {
    const c = new LeaderElector(database.url, logger, 100);
    electors.push(c);
    c.start();
    const current = electors.find((e) => e.isLeader)!;
    await current.stop();
    await vi.waitFor(() => expect(electors.filter((e) => e !== current && e.isLeader)).toHaveLength(1), {
      ...WAIT,
      timeout: 3000,
    });
    expect(electors.filter((e) => e.isLeader)).toHaveLength(1);
  });

  it('is always the leader on the embedded database (one process)', () => {
    const solo = new LeaderElector(undefined, logger);
    solo.start();
    expect(solo.isLeader).toBe(true);
  });
});

describe('fleet jobs follow the leader', () => {
  it('runs the reconciler on exactly one of two control planes, and moves it when that one stops', async () => {
    const { randomBytes } = await import('node:crypto');
    const { loadConfig } = await import('../../src/config.js');
    const { startControlPlane } = await import('../../src/main.js');
    const env = {
      DATABASE_URL: database.url,
      PORT: '0',
      SWITCHYARD_ADMIN_TOKEN: `sy_test_${randomBytes(16).toString('hex')}`,
      SWITCHYARD_SECRET_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'silent',
      SWITCHYARD_RECONCILE: 'true',
      SWITCHYARD_LEADER_RETRY_MS: '100',
    };
    for (const e of electors) await e.stop(); // the first tests' electors hold the lock on this database
    const one = await startControlPlane(loadConfig(env), logger);
    const two = await startControlPlane(loadConfig(env), logger);
    try {
      await vi.waitFor(() => expect([one, two].filter((cp) => cp.reconciler?.running)).toHaveLength(1), WAIT);
      const leader = one.reconciler?.running ? one : two;
      const standby = leader === one ? two : one;
      expect(standby.leader.isLeader).toBe(false);
      await leader.stop();
      await vi.waitFor(() => expect(standby.reconciler?.running).toBe(true), WAIT);
    } finally {
      for (const cp of [one, two]) await cp.stop().catch(() => undefined);
    }
  });
});
