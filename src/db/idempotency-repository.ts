import type { Db } from './connect.js';

/** An Idempotency-Key as stored: the request it was first used for, and its answer once that request committed. */
export interface StoredIdempotencyKey {
  readonly method: string;
  readonly path: string;
  readonly requestHash: string;
  /** Null while the first request is still running (or if it rolled back without storing one). */
  readonly response: unknown;
}

export interface IdempotencyKeyClaim {
  readonly tokenId: string;
  readonly key: string;
  readonly method: string;
  readonly path: string;
  readonly requestHash: string;
}

/** Forgets the token's key if it was stored before `createdBefore`, so it may be used for a new request. */
export async function deleteExpiredKey(db: Db, tokenId: string, key: string, createdBefore: Date): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('token_id', '=', tokenId)
    .where('key', '=', key)
    .where('created_at', '<', createdBefore)
    .execute();
}

/**
 * Stores the key for this request; false when the token already has it. Inside a transaction, a
 * concurrent request with the same key blocks here until the first one commits or rolls back.
 */
export async function insertKey(db: Db, claim: IdempotencyKeyClaim): Promise<boolean> {
  const inserted = await db
    .insertInto('idempotency_keys')
    .values({
      token_id: claim.tokenId,
      key: claim.key,
      method: claim.method,
      path: claim.path,
      request_hash: claim.requestHash,
    })
    .onConflict((oc) => oc.doNothing())
    .returning('key')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** The token's stored key; throws when it has none (call it after insertKey found one). */
export async function findKey(db: Db, tokenId: string, key: string): Promise<StoredIdempotencyKey> {
  const row = await db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('token_id', '=', tokenId)
    .where('key', '=', key)
    .executeTakeFirstOrThrow();
  return { method: row.method, path: row.path, requestHash: row.request_hash, response: row.response };
}

/** Stores the answer a replay of the key gets (status 200), in the write's transaction. */
export async function storeResponse(db: Db, tokenId: string, key: string, response: unknown): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ status: 200, response: JSON.stringify(response) })
    .where('token_id', '=', tokenId)
    .where('key', '=', key)
    .execute();
}
