import { sql, type Kysely } from 'kysely';

/**
 * A version's structural parts (what a reload is for) as the digests of chunks stored as config
 * segments, instead of one JSON object per version. At 10,000 tenants that object was 430 KB,
 * written on every build that changed the structure (every new VIP) and costing PostgreSQL about
 * 80 ms each; a chunk holds about 64 parts, so a one-tenant change now writes one new chunk.
 * Rows stored before keep their `structural_parts`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table config_versions add column structure_chunks bytea`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table config_versions drop column structure_chunks`.execute(db);
}
