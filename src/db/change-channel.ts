import { sql } from 'kysely';
import type pg from 'pg';
import type { Db } from './connect.js';

/** The NOTIFY channel every replica listens on: committed revisions and requests to the leader's reconciler. */
export const CHANGES_CHANNEL = 'switchyard_changes';

/** Sends `payload` on the changes channel: at once, or when the transaction `db` commits (never if it rolls back). */
export async function notifyChanges(db: Db, payload: string): Promise<void> {
  await sql`select pg_notify(${CHANGES_CHANNEL}, ${payload})`.execute(db);
}

/** Listens on the changes channel on a dedicated connection: `onPayload` gets each payload sent to it. */
export async function listenForChanges(client: pg.Client, onPayload: (payload: string) => void): Promise<void> {
  client.on('notification', (msg) => {
    if (msg.channel === CHANGES_CHANNEL && msg.payload !== undefined) onPayload(msg.payload);
  });
  await client.query(`LISTEN ${CHANGES_CHANNEL}`);
}
