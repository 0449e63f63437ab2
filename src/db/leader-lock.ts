import type pg from 'pg';

/** Same constant in every replica; it only has to differ from the migration lock's (migrate.ts). */
const LEADER_LOCK_KEY = 0x5377_6c64; // "Swld"

/**
 * Takes the leader lock for `client`'s session unless another session holds it: a session-level
 * advisory lock, held until that connection ends (so it dies with the leader's process or network).
 */
export async function tryLeaderLock(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [
    LEADER_LOCK_KEY,
  ]);
  return rows[0]?.locked === true;
}
