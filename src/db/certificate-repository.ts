import type { Certificate } from '../domain/certificate.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';

/** What the service stores for a certificate: the parsed chain and its metadata, the key sealed. */
export interface StoredCertificate {
  readonly chainPem: string;
  readonly keyCiphertext: string;
  readonly sans: readonly string[];
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly fingerprintSha256: string;
}

/** The sealed material of one certificate, for the renderer's path only. */
export interface SealedCertificate {
  readonly name: string;
  readonly chainPem: string;
  readonly keyCiphertext: string;
  readonly sans: readonly string[];
}

/** The public columns: reads for the API never fetch the chain or the sealed key at all. */
const PUBLIC_COLUMNS = [
  'name',
  'sans',
  'subject',
  'issuer',
  'not_before',
  'not_after',
  'fingerprint_sha256',
  'revision',
  'created_at',
  'updated_at',
] as const;

interface PublicRow {
  name: string;
  sans: string[];
  subject: string;
  issuer: string;
  not_before: Date | string;
  not_after: Date | string;
  fingerprint_sha256: string;
  revision: string;
  created_at: Date | string;
  updated_at: Date | string;
}

export function toCertificate(row: PublicRow): Certificate {
  return {
    name: row.name,
    sans: row.sans,
    subject: row.subject,
    issuer: row.issuer,
    notBefore: iso(row.not_before),
    notAfter: iso(row.not_after),
    fingerprintSha256: row.fingerprint_sha256,
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export async function findCertificate(db: Db, tenantId: string, name: string): Promise<Certificate | undefined> {
  const row = await db
    .selectFrom('certificates')
    .select(PUBLIC_COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row && toCertificate(row);
}

/** Certificates sorted by name, after `after` when given. */
export async function listCertificates(
  db: Db,
  tenantId: string,
  q: { limit: number; after?: string | undefined },
): Promise<Certificate[]> {
  let query = db
    .selectFrom('certificates')
    .select(PUBLIC_COLUMNS)
    .where('tenant_id', '=', tenantId)
    .orderBy('name')
    .limit(q.limit);
  if (q.after !== undefined) query = query.where('name', '>', q.after);
  return (await query.execute()).map(toCertificate);
}

export async function findSealedCertificate(
  db: Db,
  tenantId: string,
  name: string,
): Promise<SealedCertificate | undefined> {
  const rows = await sealedQuery(db, tenantId).where('name', '=', name).execute();
  return rows[0];
}

export async function listSealedCertificates(db: Db, tenantId: string): Promise<SealedCertificate[]> {
  return sealedQuery(db, tenantId).orderBy('name').execute();
}

function sealedQuery(db: Db, tenantId: string) {
  return db
    .selectFrom('certificates')
    .select(['name', 'chain_pem as chainPem', 'key_ciphertext as keyCiphertext', 'sans'])
    .where('tenant_id', '=', tenantId);
}

export async function insertCertificate(
  db: Db,
  tenantId: string,
  name: string,
  c: StoredCertificate,
  revision: number,
): Promise<Certificate> {
  const row = await db
    .insertInto('certificates')
    .values({ tenant_id: tenantId, name, ...columns(c), revision })
    .returning(PUBLIC_COLUMNS)
    .executeTakeFirstOrThrow();
  return toCertificate(row);
}

/** Replaces the chain and key of an existing certificate (a rotation). */
export async function updateCertificate(
  db: Db,
  tenantId: string,
  name: string,
  c: StoredCertificate,
  revision: number,
): Promise<Certificate> {
  const row = await db
    .updateTable('certificates')
    .set({ ...columns(c), revision, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .returning(PUBLIC_COLUMNS)
    .executeTakeFirstOrThrow();
  return toCertificate(row);
}

function columns(c: StoredCertificate) {
  return {
    chain_pem: c.chainPem,
    key_ciphertext: c.keyCiphertext,
    sans: JSON.stringify(c.sans),
    subject: c.subject,
    issuer: c.issuer,
    not_before: c.notBefore,
    not_after: c.notAfter,
    fingerprint_sha256: c.fingerprintSha256,
  };
}

/** The chain currently stored, to tell a real rotation from a repeated upload. */
export async function findChainPem(db: Db, tenantId: string, name: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('certificates')
    .select('chain_pem')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.chain_pem;
}

export async function deleteCertificate(db: Db, tenantId: string, name: string): Promise<void> {
  await db.deleteFrom('certificates').where('tenant_id', '=', tenantId).where('name', '=', name).execute();
}

/** Names of the tenant's VIPs that serve this certificate, sorted. */
export async function vipsUsingCertificate(db: Db, tenantId: string, name: string): Promise<string[]> {
  const rows = await db
    .selectFrom('vips')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('certificate', '=', name)
    .orderBy('name')
    .execute();
  return rows.map((r) => r.name);
}
