import type { CaBundle, CaBundleEntry, CaBundleMaterial } from '../domain/ca-bundle.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';

/** What the service stores for a bundle: the re-encoded PEM and what the API shows of it. */
export interface StoredCaBundle {
  readonly pem: string;
  readonly entries: readonly CaBundleEntry[];
  readonly notAfter: Date;
}

/** Reads for the API never fetch the PEM itself. */
const PUBLIC_COLUMNS = ['name', 'certificates', 'not_after', 'revision', 'created_at', 'updated_at'] as const;

interface PublicRow {
  name: string;
  certificates: unknown;
  not_after: Date | string;
  revision: string;
  created_at: Date | string;
  updated_at: Date | string;
}

function toCaBundle(row: PublicRow): CaBundle {
  const entries = row.certificates as CaBundleEntry[];
  return {
    name: row.name,
    // jsonb reorders keys: rebuild each entry in a stable order.
    certificates: entries.map((e) => ({
      subject: e.subject,
      notAfter: e.notAfter,
      fingerprintSha256: e.fingerprintSha256,
    })),
    notAfter: iso(row.not_after),
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export async function findCaBundle(db: Db, tenantId: string, name: string): Promise<CaBundle | undefined> {
  const row = await db
    .selectFrom('ca_bundles')
    .select(PUBLIC_COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row && toCaBundle(row);
}

/** Bundles sorted by name, after `after` when given. */
export async function listCaBundles(
  db: Db,
  tenantId: string,
  q: { limit: number; after?: string | undefined },
): Promise<CaBundle[]> {
  let query = db
    .selectFrom('ca_bundles')
    .select(PUBLIC_COLUMNS)
    .where('tenant_id', '=', tenantId)
    .orderBy('name')
    .limit(q.limit);
  if (q.after !== undefined) query = query.where('name', '>', q.after);
  return (await query.execute()).map(toCaBundle);
}

/** The stored PEM, to tell a real replacement from a repeated upload. */
export async function findCaBundlePem(db: Db, tenantId: string, name: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('ca_bundles')
    .select('pem')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.pem;
}

export async function listCaBundleMaterial(db: Db, tenantId: string): Promise<CaBundleMaterial[]> {
  return db
    .selectFrom('ca_bundles')
    .select(['name', 'pem'])
    .where('tenant_id', '=', tenantId)
    .orderBy('name')
    .execute();
}

export async function insertCaBundle(
  db: Db,
  tenantId: string,
  name: string,
  b: StoredCaBundle,
  revision: number,
): Promise<CaBundle> {
  const row = await db
    .insertInto('ca_bundles')
    .values({ tenant_id: tenantId, name, ...columns(b), revision })
    .returning(PUBLIC_COLUMNS)
    .executeTakeFirstOrThrow();
  return toCaBundle(row);
}

export async function updateCaBundle(
  db: Db,
  tenantId: string,
  name: string,
  b: StoredCaBundle,
  revision: number,
): Promise<CaBundle> {
  const row = await db
    .updateTable('ca_bundles')
    .set({ ...columns(b), revision, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .returning(PUBLIC_COLUMNS)
    .executeTakeFirstOrThrow();
  return toCaBundle(row);
}

export async function deleteCaBundle(db: Db, tenantId: string, name: string): Promise<void> {
  await db.deleteFrom('ca_bundles').where('tenant_id', '=', tenantId).where('name', '=', name).execute();
}

export async function caBundleExists(db: Db, tenantId: string, name: string): Promise<boolean> {
  const row = await db
    .selectFrom('ca_bundles')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row !== undefined;
}

function columns(b: StoredCaBundle) {
  return { pem: b.pem, certificates: JSON.stringify(b.entries), not_after: b.notAfter };
}
