import { sql } from 'kysely';
import type { Db } from './connect.js';

/** The append-only tables retention trims, each with the timestamp column its rows age by (indexed). */
export const RETAINED = {
  audit_events: 'at',
  allocation_history: 'at',
  idempotency_keys: 'created_at',
} as const;

export type RetainedTable = keyof typeof RETAINED;

/**
 * Deletes the rows of `table` older than `cutoff`, `batch` rows per statement: each statement is
 * its own short transaction, so a backlog of millions never holds locks or bloats one transaction,
 * and writers interleave between batches. Returns how many rows went.
 */
export async function deleteOlderThan(db: Db, table: RetainedTable, cutoff: Date, batch = 5_000): Promise<number> {
  const column = RETAINED[table];
  let total = 0;
  for (;;) {
    const result = await sql`
      delete from ${sql.table(table)}
      where ctid = any(array(select ctid from ${sql.table(table)} where ${sql.ref(column)} < ${cutoff} limit ${batch}))
    `.execute(db);
    const deleted = Number(result.numAffectedRows ?? 0n);
    total += deleted;
    if (deleted < batch) return total;
  }
}
