import {
  CertificateError,
  parseCertificateBundle,
  type Certificate,
  type CreateCertificate,
  type ParsedCertificate,
} from '../domain/certificate.js';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import type { CertificateMaterial } from '../domain/snapshot.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/certificate-repository.js';
import { poolsUsingTlsMaterial } from '../db/pool-repository.js';
import { PG_FOREIGN_KEY_VIOLATION, pgErrorCode } from '../db/pg-error-codes.js';
import { checkIfMatch, mutate, type Tx, type WriteContext, type Written } from './mutation.js';
import { SecretBox } from './secret-box.js';
import { fetchSize, toPage } from './page.js';
import { systemClock, type Clock } from '../util/clock.js';

export interface CertificatePage {
  readonly items: Certificate[];
  readonly nextCursor: string | null;
}

/**
 * A tenant's TLS certificates. Uploads are parsed and checked before anything is stored; the
 * private key is sealed with the secret key and only ever opened for the renderer (`*Material`).
 */
export class CertificateService {
  private readonly box: SecretBox;

  constructor(
    private readonly db: Db,
    secretKey: Buffer,
    /** Judges uploaded certificates' expiry. */
    private readonly clock: Clock = systemClock,
  ) {
    this.box = new SecretBox(secretKey);
  }

  async get(tenantId: string, name: string): Promise<Certificate> {
    const cert = await repo.findCertificate(this.db, tenantId, name);
    if (!cert) throw new NotFoundError('certificate', name);
    return cert;
  }

  async list(tenantId: string, q: { limit: number; cursor?: string | undefined }): Promise<CertificatePage> {
    const items = await repo.listCertificates(this.db, tenantId, { limit: fetchSize(q.limit), after: q.cursor });
    return toPage(items, q.limit, (x) => x.name);
  }

  async create(ctx: WriteContext, tenantId: string, input: CreateCertificate): Promise<Written<Certificate>> {
    // Parse and seal outside the transaction: CPU work that needs no lock.
    const stored = this.prepare(tenantId, input.name, input.certificate, input.privateKey);
    return mutate(this.db, ctx, async (tx) => {
      if (await repo.findCertificate(tx.db, tenantId, input.name)) {
        throw new ConflictError(`certificate '${input.name}' already exists; rotate it with PUT`);
      }
      // No unique-violation race to catch: mutate() serialises writes on the revision lock.
      const cert = await repo.insertCertificate(tx.db, tenantId, input.name, stored, tx.revision);
      tx.audit({
        action: 'create',
        resourceType: 'certificate',
        resourceId: resourceId(tenantId, cert.name),
        tenantId,
        before: null,
        after: cert,
      });
      return cert;
    });
  }

  /** Rotation: a new chain and key under the same name, so the VIPs serving it pick it up. */
  async replace(
    ctx: WriteContext,
    tenantId: string,
    name: string,
    input: { certificate: string; privateKey: string },
  ): Promise<Written<Certificate>> {
    const stored = this.prepare(tenantId, name, input.certificate, input.privateKey);
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findCertificate(tx.db, tenantId, name);
      if (!before) throw new NotFoundError('certificate', name);
      checkIfMatch(tx, `certificate '${name}'`, before.revision);
      // The same chain implies the same key (it must match the leaf): nothing changes, no revision.
      if ((await repo.findChainPem(tx.db, tenantId, name)) === stored.chainPem) return before;
      const after = await repo.updateCertificate(tx.db, tenantId, name, stored, tx.revision);
      tx.audit({
        action: 'update',
        resourceType: 'certificate',
        resourceId: resourceId(tenantId, name),
        tenantId,
        before,
        after,
      });
      return after;
    });
  }

  /**
   * Refused with 409 while a VIP serves the certificate (the VIP would lose its TLS listener) or
   * a pool shows it to its members (they would refuse the proxy).
   */
  async delete(ctx: WriteContext, tenantId: string, name: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findCertificate(tx.db, tenantId, name);
      if (!before) throw new NotFoundError('certificate', name);
      checkIfMatch(tx, `certificate '${name}'`, before.revision);
      const vips = await repo.vipsUsingCertificate(tx.db, tenantId, name);
      if (vips.length > 0) throw inUse(name, vips);
      const pools = await poolsUsingTlsMaterial(tx.db, tenantId, { clientCertificate: name });
      if (pools.length > 0) {
        throw new ConflictError(
          `certificate '${name}' is the client certificate of pool(s) ${pools.map((p) => `'${p}'`).join(', ')}; point their tls.clientCertificate elsewhere first`,
          { pools },
        );
      }
      await deleteOrConflict(tx, tenantId, name);
      tx.audit({
        action: 'delete',
        resourceType: 'certificate',
        resourceId: resourceId(tenantId, name),
        tenantId,
        before,
        after: null,
      });
      return null;
    });
  }

  /**
   * One certificate with its decrypted key, for rendering; `db` lets the caller read it inside its
   * own transaction. Throws NotFoundError, or SecretBoxError when the secret key is not the one it
   * was sealed with.
   */
  async loadMaterial(db: Db, tenantId: string, name: string): Promise<CertificateMaterial> {
    const sealed = await repo.findSealedCertificate(db, tenantId, name);
    if (!sealed) throw new NotFoundError('certificate', name);
    return this.open(tenantId, sealed);
  }

  /** Every certificate of the tenant with its decrypted key, sorted by name. */
  async listMaterial(tenantId: string, db: Db = this.db): Promise<CertificateMaterial[]> {
    return (await repo.listSealedCertificates(db, tenantId)).map((s) => this.open(tenantId, s));
  }

  private prepare(tenantId: string, name: string, certificate: string, privateKey: string): repo.StoredCertificate {
    const parsed = parseUpload(certificate, privateKey, new Date(this.clock.now()));
    return {
      chainPem: parsed.chainPem,
      keyCiphertext: this.box.seal(parsed.keyPem, sealContext(tenantId, name)),
      sans: parsed.sans,
      subject: parsed.subject,
      issuer: parsed.issuer,
      notBefore: parsed.notBefore,
      notAfter: parsed.notAfter,
      fingerprintSha256: parsed.fingerprintSha256,
    };
  }

  private open(tenantId: string, s: repo.SealedCertificate): CertificateMaterial {
    return {
      name: s.name,
      chainPem: s.chainPem,
      keyPem: this.box.open(s.keyCiphertext, sealContext(tenantId, s.name)),
      sans: s.sans,
    };
  }
}

/** Turns the domain's CertificateError into a 400 that names the body field to fix. */
function parseUpload(certificate: string, privateKey: string, now: Date): ParsedCertificate {
  try {
    return parseCertificateBundle(certificate, privateKey, now);
  } catch (err) {
    if (!(err instanceof CertificateError)) throw err;
    const path = `body.${err.field}`;
    throw new ValidationError(`${path}: ${err.message}`, [{ path, message: err.message }], { cause: err });
  }
}

/** Binds a sealed key to its row: copied to another tenant or name, it no longer opens. */
function sealContext(tenantId: string, name: string): string {
  return `certificate:${tenantId}/${name}`;
}

function resourceId(tenantId: string, name: string): string {
  return `${tenantId}/certificates/${name}`;
}

function inUse(name: string, vips: readonly string[]): ConflictError {
  return new ConflictError(
    `certificate '${name}' is served by VIP(s) ${vips.map((v) => `'${v}'`).join(', ')}; point them at another certificate or delete them first`,
    { vips },
  );
}

/** The explicit check gives the clear message; the foreign key (RESTRICT) is the backstop for any writer that bypasses it. */
async function deleteOrConflict(tx: Tx, tenantId: string, name: string): Promise<void> {
  try {
    await repo.deleteCertificate(tx.db, tenantId, name);
  } catch (err) {
    if (pgErrorCode(err) !== PG_FOREIGN_KEY_VIOLATION) throw err;
    throw new ConflictError(
      `certificate '${name}' is used by a VIP or a pool; point them at another certificate first`,
    );
  }
}
