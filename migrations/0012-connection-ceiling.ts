import { sql, type Kysely } from 'kysely';

/**
 * Each allocation's connection ceiling: the node's capacity less the other tenants' reservations,
 * within the tenant's cap and limit. The tenant's frontends hold it as `maxconn`, so connections
 * past it wait in the kernel's backlog rather than being refused one by one. Null for rows stored
 * before it existed: those nodes keep the limit as the ceiling until the next rebalance.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table allocations add column connection_ceiling integer check (connection_ceiling >= 0)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table allocations drop column connection_ceiling`.execute(db);
}
