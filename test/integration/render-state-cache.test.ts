import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { recordGood } from '../../src/db/config-repository.js';
import type { Db } from '../../src/db/connect.js';
import { RenderStateCache } from '../../src/services/config/render-state-cache.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/** The render states a build looks tenants up in, over a real database: what it reads, and when. */

let database: TestDatabase;
let db: Db;

async function tenant(id: string): Promise<void> {
  await sql`
    insert into tenants (id, display_name, state, reservation_vcpu, reservation_memory_mb, limit_vcpu, limit_memory_mb, weight, revision)
    values (${id}, ${id}, 'active', 0.1, 64, 1, 512, 1, 1)
  `.execute(db);
}

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.handle.db;
  for (const id of ['a', 'b', 'c']) await tenant(id);
});
afterAll(async () => {
  await database?.drop();
});

describe('RenderStateCache', () => {
  it('answers the copy it holds while a due whole read runs in the background, then that read with what was recorded here on top', async () => {
    await recordGood(db, 'haproxy', [{ tenantId: 'a', state: {}, hash: 'a1' }], 1);
    let now = 0;
    const cache = new RenderStateCache(db, () => now);
    expect((await cache.summaries('haproxy')).get('a')?.goodHash).toBe('a1');

    // Another replica records b; this process records c (after its build committed).
    await recordGood(db, 'haproxy', [{ tenantId: 'b', state: {}, hash: 'b1' }], 2);
    await recordGood(db, 'haproxy', [{ tenantId: 'c', state: {}, hash: 'c1' }], 2);
    await cache.recorded('haproxy', [{ tenant: 'c', hash: 'c1', revision: 2 }], []);
    const held = await cache.summaries('haproxy');
    expect(held.get('b')).toBeUndefined();
    expect(held.get('c')?.goodHash).toBe('c1');

    // A minute on: the held copy is answered at once, without b, and a whole read is under way.
    now = 61_000;
    expect(await cache.summaries('haproxy')).toBe(held);
    await vi.waitFor(async () => expect((await cache.summaries('haproxy')).get('b')?.goodHash).toBe('b1'), {
      timeout: 5_000,
      interval: 10,
    });
    const fresh = await cache.summaries('haproxy');
    expect(fresh.get('a')?.goodHash).toBe('a1');
    expect(fresh.get('c')?.goodHash).toBe('c1');
    // Answered maps never change: the old one still says what it said.
    expect(held.get('b')).toBeUndefined();
  });
});
