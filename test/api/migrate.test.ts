import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { MIGRATIONS_DIR, migrateToLatest, migrationsPending, type MigrationProgress } from '../../src/db/migrate.js';
import { readdirSync } from 'node:fs';
import { withDatabase } from '../global-setup.js';

describe('migrations', () => {
  it('two replicas starting at once on an empty database both succeed, each migration runs once, and its progress is reported once', async () => {
    const { adminUrl, prefix } = inject('testDatabase');
    const name = `${prefix}_m${randomBytes(3).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    const [a, b] = await Promise.all(
      [1, 2].map(() => openDatabase({ url: withDatabase(adminUrl, name), dataDir: '/nonexistent' })),
    );
    try {
      const reported: MigrationProgress[] = [];
      const results = await Promise.all([a!, b!].map((h) => migrateToLatest(h.db, undefined, (p) => reported.push(p))));
      const applied = results.flatMap((r) => (r.results ?? []).map((x) => x.migrationName));
      const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{4}-.*\.ts$/.test(f));
      const names = files.map((f) => f.replace(/\.ts$/, '')).sort();
      expect(applied.sort()).toEqual(names);
      expect(reported).toEqual(names.map((migration, i) => ({ migration, n: i + 1, total: names.length })));
      expect(await migrationsPending(a!.db)).toEqual([]);
      const count = await a!.db.selectFrom('revision_counter').select('revision').execute();
      expect(count).toHaveLength(1);
    } finally {
      await a!.close();
      await b!.close();
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});
