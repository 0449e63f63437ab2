import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import type { Db } from '../../src/db/connect.js';
import type { Database } from '../../src/db/schema.js';

/**
 * A Db that compiles PostgreSQL queries but has no server behind it (kysely's DummyDriver: every
 * query answers no rows). For unit tests of code that holds a Db on a path that never queries it;
 * anything that must read or write rows belongs in test/api or test/integration.
 */
export function offlineDb(): Db {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
}
