import { sql, type Kysely } from 'kysely';

/**
 * The revision a config version was first built at. Its `revision` only grows (an unchanged
 * version stands for newer revisions too), so without this an agent could report applying a
 * version at a revision from before it existed. Null for versions stored before it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table config_versions add column built_revision bigint`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table config_versions drop column built_revision`.execute(db);
}
