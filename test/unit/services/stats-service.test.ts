import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/schema.js';
import { StatsService } from '../../../src/services/stats-service.js';

/** Accepts every statement and returns no rows: what is tested is the choice of source. */
const db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

describe('StatsService', () => {
  const HOUR = 3_600_000;

  it('judges the default hour against the moment it was taken at, not a later reading of the clock', async () => {
    const stats = new StatsService(db, { rawRetentionS: 3600 });
    const takenAt = new Date(Date.now() - 5_000); // the clock has moved on since (a slow request)
    const window = { from: new Date(takenAt.getTime() - HOUR), to: takenAt, stepS: 60 };
    expect((await stats.series('t1', window, takenAt)).source).toBe('raw');
    // Judged against the later clock, the same hour starts before raw retention: the rollups, which lag.
    expect((await stats.series('t1', window)).source).toBe('rollup');
  });
});
