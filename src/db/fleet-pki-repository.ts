import { sql, type Selectable } from 'kysely';
import type { Db } from './connect.js';
import type { FleetCaTable, FleetCertificateTable } from './schema.js';

/** The subject under which the control plane's own client certificate is stored. */
export const CONTROL_PLANE = 'control-plane';
export const nodeSubjectKey = (node: string): string => `node:${node}`;

export type StoredCa = Selectable<FleetCaTable>;
export type StoredCertificate = Selectable<FleetCertificateTable>;

/** Any constant works; the same in every replica: creating the first CA is done once. */
const CA_LOCK_KEY = 0x5379_4341; // "SyCA"

/** Serialises CA creation across replicas until the caller's transaction ends. */
export async function lockCa(db: Db): Promise<void> {
  await sql`select pg_advisory_xact_lock(${CA_LOCK_KEY})`.execute(db);
}

/** The issuing CA: the newest one. */
export async function issuingCa(db: Db): Promise<StoredCa | undefined> {
  return db.selectFrom('fleet_cas').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirst();
}

/** The CAs nodes trust client certificates of: every one not expired, the issuing one first. */
export async function trustedCas(db: Db, now: Date): Promise<StoredCa[]> {
  const rows = await db
    .selectFrom('fleet_cas')
    .selectAll()
    .where('not_after', '>', now)
    .orderBy('id', 'desc')
    .execute();
  return rows;
}

export async function findCaByFingerprint(db: Db, fingerprint: string): Promise<StoredCa | undefined> {
  return db.selectFrom('fleet_cas').selectAll().where('fingerprint', '=', fingerprint).executeTakeFirst();
}

export async function insertCa(
  db: Db,
  ca: { certPem: string; keySealed: string; fingerprint: string; source: 'generated' | 'supplied'; notAfter: Date },
): Promise<StoredCa> {
  return db
    .insertInto('fleet_cas')
    .values({
      cert_pem: ca.certPem,
      key_sealed: ca.keySealed,
      fingerprint: ca.fingerprint,
      source: ca.source,
      not_after: ca.notAfter,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findCertificate(db: Db, subject: string): Promise<StoredCertificate | undefined> {
  return db.selectFrom('fleet_certificates').selectAll().where('subject', '=', subject).executeTakeFirst();
}

export async function listCertificates(db: Db): Promise<StoredCertificate[]> {
  return db.selectFrom('fleet_certificates').selectAll().orderBy('subject').execute();
}

export interface CertificateRow {
  readonly subject: string;
  readonly nodeName: string | null;
  readonly caId: number;
  readonly certPem: string;
  readonly keySealed: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuedAt: Date;
}

/** Stores a certificate, replacing the subject's previous one. */
export async function saveCertificate(db: Db, c: CertificateRow): Promise<void> {
  const values = {
    ca_id: c.caId,
    cert_pem: c.certPem,
    key_sealed: c.keySealed,
    serial: c.serial,
    not_before: c.notBefore,
    not_after: c.notAfter,
    issued_at: c.issuedAt,
  };
  await db
    .insertInto('fleet_certificates')
    .values({ subject: c.subject, node_name: c.nodeName, ...values })
    .onConflict((oc) => oc.column('subject').doUpdateSet(values))
    .execute();
}

/**
 * Whether every node with a Runtime API or runtime channel runs (has applied) a config built after its
 * certificate from `caId` was issued: then each trusts that CA (the bundle is in the same files),
 * and the control plane may present a client certificate from it.
 */
export async function everyNodeTrusts(db: Db, caId: number): Promise<boolean> {
  const row = await db
    .selectFrom('nodes as n')
    .leftJoin('fleet_certificates as c', 'c.node_name', 'n.name')
    .where('n.runtime_host', 'is not', null)
    .where((eb) =>
      eb.or([
        eb('c.ca_id', 'is', null),
        eb('c.ca_id', '!=', caId),
        eb.not(
          eb.exists(
            eb
              .selectFrom('config_versions as v')
              .select('v.id')
              .whereRef('v.node_name', '=', 'n.name')
              .whereRef('v.content_hash', '=', 'n.applied_hash')
              .whereRef('v.created_at', '>=', 'c.issued_at'),
          ),
        ),
      ]),
    )
    .select((eb) => eb.fn.countAll<string>().as('lagging'))
    .executeTakeFirstOrThrow();
  return Number(row.lagging) === 0;
}
