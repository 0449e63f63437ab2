import { sql, type Kysely } from 'kysely';

/**
 * Connections a tenant frontend refused at the tenant's connection cap, per second (HAProxy's
 * `dses` between two polls): with the 429s, what the allocator reads as demand the caps hide.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table stat_samples add column refused_rate double precision`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table stat_samples drop column refused_rate`.execute(db);
}
