import { sql } from 'kysely';
import type { Db } from './connect.js';

/** The newest committed revision of the desired state (what every cache and reconciler compares against). */
export async function currentRevision(db: Db): Promise<number> {
  const row = await db.selectFrom('revision_counter').select('revision').where('id', '=', 1).executeTakeFirstOrThrow();
  return Number(row.revision);
}

/**
 * Takes the revision lock and the next revision in one round trip, inside the caller's write
 * transaction: writers then commit in revision order and readers see a gap-free history. The
 * lock is held, and the counter moves, only if the caller commits.
 */
export async function takeNextRevision(trx: Db): Promise<number> {
  const row = await trx
    .updateTable('revision_counter')
    .set({ revision: sql`revision + 1` })
    .where('id', '=', 1)
    .returning('revision')
    .executeTakeFirstOrThrow();
  return Number(row.revision);
}
