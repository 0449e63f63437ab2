import { sql, type Kysely } from 'kysely';

/**
 * Retention (jobs/retention.ts) deletes the oldest rows of append-only tables in small batches:
 * each batch finds its rows by time, so every such table needs an index on its timestamp.
 * audit_events has one since 0001; allocation_history and idempotency_keys get theirs here.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create index allocation_history_at_idx on allocation_history (at);
    create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop index idempotency_keys_created_at_idx;
    drop index allocation_history_at_idx;
  `.execute(db);
}
