import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

async function eventually(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('leader election', () => {
  it('elects exactly one of two replicas, and the other takes over within one interval when the leader dies', async () => {
    const a = new LeaderElector(database.url, logger, 200);
    const b = new LeaderElector(database.url, logger, 200);
    electors.push(a, b);
    a.start();
    await eventually(() => a.isLeader, 5000);
    b.start();
    await new Promise((r) => setTimeout(r, 600)); // b has tried several times by now
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);

    // Kill the leader's connection as a crash or a network partition would.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const killedAt = Date.now();
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'switchyard-leader' and datname = current_database()
         and pid = (select pid from pg_locks where locktype = 'advisory' and granted limit 1)`,
    );
    await admin.end();
    await eventually(() => b.isLeader, 5000);
    expect(Date.now() - killedAt).toBeLessThan(2000);
    await eventually(() => !a.isLeader, 5000);
  });

  it('stepping down releases the lock at once', async () => {
    const c = new LeaderElector(database.url, logger, 100);
    electors.push(c);
    c.start();
    const current = electors.find((e) => e.isLeader)!;
    await current.stop();
    await eventually(() => c.isLeader || electors.some((e) => e !== current && e.isLeader), 3000);
    expect(electors.filter((e) => e.isLeader)).toHaveLength(1);
  });

  it('is always the leader on the embedded database (one process)', () => {
    const solo = new LeaderElector(undefined, logger);
    solo.start();
    expect(solo.isLeader).toBe(true);
  });
});
