import { sql } from 'kysely';
import type { Db } from './connect.js';
import { asBuffer } from './column-values.js';

/** One stored segment: its digest, and its text or (when `sealed`) the text's SecretBox seal. */
export interface SegmentRow {
  readonly digest: Buffer;
  readonly content: string;
  readonly sealed: boolean;
}

// Any constant works; it only has to be the same in every replica (migrate.ts and jobs/leader.ts hold others).
const SEGMENTS_LOCK_KEY = 0x5377_7367; // "Swsg"

/** Text per insert statement: one tenant's change is one statement, a first build of 10 MB a few. */
const INSERT_BATCH_CHARS = 4 * 1024 * 1024;
const DELETE_BATCH = 10_000;

/**
 * Held until the transaction ends by every transaction that stores a version: the sweep, which
 * takes it exclusively, never runs between an insert deciding which segments already exist and
 * its commit. Must be the transaction's lock before it reads anything it relies on (READ COMMITTED).
 */
export async function lockSegmentsForInsert(trx: Db): Promise<void> {
  await sql`select pg_advisory_xact_lock_shared(${SEGMENTS_LOCK_KEY})`.execute(trx);
}

/** The sweep's side of `lockSegmentsForInsert`: waits for inserts in flight, holds off new ones until the transaction ends. */
export async function lockSegmentsForSweep(trx: Db): Promise<void> {
  await sql`select pg_advisory_xact_lock(${SEGMENTS_LOCK_KEY})`.execute(trx);
}

export async function configVersionExists(db: Db, id: number): Promise<boolean> {
  const row = await db.selectFrom('config_versions').select('id').where(sql<boolean>`id = ${id}`).executeTakeFirst();
  return row !== undefined;
}

/** Stores the segments that are not stored yet (a concurrent insert of the same digest is no conflict). */
export async function insertSegments(db: Db, rows: readonly SegmentRow[]): Promise<void> {
  let start = 0;
  while (start < rows.length) {
    let end = start;
    let chars = 0;
    while (end < rows.length && (end === start || chars + rows[end]!.content.length <= INSERT_BATCH_CHARS))
      chars += rows[end++]!.content.length;
    const batch = rows.slice(start, end);
    await sql`
      insert into config_segments (digest, content, sealed)
      select * from unnest(${batch.map((r) => r.digest)}::bytea[], ${batch.map((r) => r.content)}::text[], ${batch.map((r) => r.sealed)}::boolean[])
      on conflict (digest) do nothing
    `.execute(db);
    start = end;
  }
}

/** The stored segments among these digests (one query; missing ones are simply not answered). */
export async function findSegments(db: Db, digests: readonly Buffer[]): Promise<SegmentRow[]> {
  if (digests.length === 0) return [];
  const rows = await db
    .selectFrom('config_segments')
    .select(['digest', 'content', 'sealed'])
    .where(sql<boolean>`digest = any(${[...digests]}::bytea[])`)
    .execute();
  return rows.map((r) => ({ digest: asBuffer(r.digest), content: r.content, sealed: r.sealed }));
}

/** Every stored segment's digest. */
export async function segmentDigests(db: Db): Promise<Buffer[]> {
  const rows = await db.selectFrom('config_segments').select('digest').execute();
  return rows.map((r) => asBuffer(r.digest));
}

/** What a stored version references: its manifest, and the chunks of its structural parts. */
export interface VersionReferences {
  readonly id: number;
  readonly manifest: Buffer | null;
  readonly structureChunks: Buffer | null;
}

function referenceRows(db: Db) {
  return db
    .selectFrom('config_versions')
    .select(['id', 'manifest', 'structure_chunks'])
    .where((eb) => eb.or([eb('manifest', 'is not', null), eb('structure_chunks', 'is not', null)]));
}

const toReferences = (r: {
  id: unknown;
  manifest: Uint8Array | null;
  structure_chunks: Uint8Array | null;
}): VersionReferences => ({
  id: Number(r.id),
  manifest: asBuffer(r.manifest),
  structureChunks: asBuffer(r.structure_chunks),
});

/** Up to `limit` versions with an id above `afterId`, by id: what they reference. */
export async function referencesAfter(db: Db, afterId: number, limit: number): Promise<VersionReferences[]> {
  const rows = await referenceRows(db).where(sql<boolean>`id > ${afterId}`).orderBy('id').limit(limit).execute();
  return rows.map(toReferences);
}

/** What every version except these references. */
export async function referencesExcept(db: Db, ids: readonly number[]): Promise<VersionReferences[]> {
  const rows = await referenceRows(db)
    .where(sql<boolean>`not (id = any(${ids.map(String)}::bigint[]))`)
    .execute();
  return rows.map(toReferences);
}

/** Deletes these segments; answers how many were stored. */
export async function deleteSegments(db: Db, digests: readonly Buffer[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < digests.length; i += DELETE_BATCH) {
    const result = await db
      .deleteFrom('config_segments')
      .where(sql<boolean>`digest = any(${digests.slice(i, i + DELETE_BATCH)}::bytea[])`)
      .executeTakeFirst();
    deleted += Number(result.numDeletedRows);
  }
  return deleted;
}
