import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { Migrator, sql, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import type { Db } from './connect.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Imports migrations/*.ts itself: kysely's FileMigrationProvider cannot load .ts under vitest. */
class DirectoryMigrationProvider implements MigrationProvider {
  /** Called as each migration starts, inside the migrating transaction. */
  beforeUp: (name: string) => void = () => {};

  constructor(private readonly dir: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.dir)).filter((f) => /^\d{4}-[a-z0-9-]+\.ts$/.test(f)).sort();
    const out: Record<string, Migration> = {};
    for (const file of files) {
      const name = file.replace(/\.ts$/, '');
      const migration = (await import(pathToFileURL(join(this.dir, file)).href)) as Migration;
      out[name] = {
        ...migration,
        up: async (db) => {
          this.beforeUp(name);
          await migration.up(db);
        },
      };
    }
    return out;
  }
}

// Any constant works; it only has to be the same in every replica.
const MIGRATION_LOCK_KEY = 0x5377_6d69; // "Swmi"

/** One migration about to run: the `n`th of the `total` this call applies. */
export interface MigrationProgress {
  readonly migration: string;
  readonly n: number;
  readonly total: number;
}

/**
 * Brings the schema up to date, all pending migrations in one transaction (kysely's Migrator
 * does that on PostgreSQL). Safe when several replicas start at once: a session-level advisory
 * lock serialises them, and whoever comes second finds nothing left to do. `onProgress` hears of
 * each migration as it starts. Throws with the failing migration's name when one fails.
 */
export async function migrateToLatest(
  db: Db,
  dir = MIGRATIONS_DIR,
  onProgress?: (progress: MigrationProgress) => void,
): Promise<MigrationResultSet> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn);
    try {
      const provider = new DirectoryMigrationProvider(dir);
      const migrator = new Migrator({ db: conn, provider });
      if (onProgress) {
        const pending = (await migrator.getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name);
        provider.beforeUp = (name) =>
          onProgress({ migration: name, n: pending.indexOf(name) + 1, total: pending.length });
      }
      const result = await migrator.migrateToLatest();
      if (result.error) {
        const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
        throw new Error(`migration ${failed} failed: ${String((result.error as Error).message ?? result.error)}`, {
          cause: result.error,
        });
      }
      return result;
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn);
    }
  });
}

/** True when every migration in `dir` has been applied (readiness). */
export async function migrationsPending(db: Db, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new DirectoryMigrationProvider(dir) });
  const all = await migrator.getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
