import { parseCaBundle, type CaBundle, type CreateCaBundle, type ParsedCaBundle } from '../domain/ca-bundle.js';
import { CertificateError } from '../domain/certificate.js';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/ca-bundle-repository.js';
import { PG_FOREIGN_KEY_VIOLATION, pgErrorCode } from '../db/pg-error-codes.js';
import { poolsUsingTlsMaterial } from '../db/pool-repository.js';
import { checkIfMatch, mutate, type Tx, type WriteContext, type Written } from './mutation.js';
import { fetchSize, toPage } from './page.js';
import { systemClock, type Clock } from '../util/clock.js';

export interface CaBundlePage {
  readonly items: CaBundle[];
  readonly nextCursor: string | null;
}

/**
 * A tenant's CA bundles: what proxies trust when they verify the tenant's TLS members (a pool's
 * `tls.caBundle`). Uploads are parsed and re-encoded before anything is stored.
 */
export class CaBundleService {
  constructor(
    private readonly db: Db,
    /** Judges uploaded bundles' expiry. */
    private readonly clock: Clock = systemClock,
  ) {}

  async get(tenantId: string, name: string): Promise<CaBundle> {
    const bundle = await repo.findCaBundle(this.db, tenantId, name);
    if (!bundle) throw new NotFoundError('CA bundle', name);
    return bundle;
  }

  async list(tenantId: string, q: { limit: number; cursor?: string | undefined }): Promise<CaBundlePage> {
    const items = await repo.listCaBundles(this.db, tenantId, { limit: fetchSize(q.limit), after: q.cursor });
    return toPage(items, q.limit, (x) => x.name);
  }

  async create(ctx: WriteContext, tenantId: string, input: CreateCaBundle): Promise<Written<CaBundle>> {
    const stored = toStored(parseUpload(input.certificates, new Date(this.clock.now())));
    return mutate(this.db, ctx, async (tx) => {
      if (await repo.caBundleExists(tx.db, tenantId, input.name)) {
        throw new ConflictError(`CA bundle '${input.name}' already exists; replace it with PUT`);
      }
      const bundle = await repo.insertCaBundle(tx.db, tenantId, input.name, stored, tx.revision);
      audit(tx, tenantId, 'create', null, bundle);
      return bundle;
    });
  }

  /** New certificates under the same name: the pools that trust it reload with them. */
  async replace(
    ctx: WriteContext,
    tenantId: string,
    name: string,
    input: { certificates: string },
  ): Promise<Written<CaBundle>> {
    const stored = toStored(parseUpload(input.certificates, new Date(this.clock.now())));
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findCaBundle(tx.db, tenantId, name);
      if (!before) throw new NotFoundError('CA bundle', name);
      checkIfMatch(tx, `CA bundle '${name}'`, before.revision);
      if ((await repo.findCaBundlePem(tx.db, tenantId, name)) === stored.pem) return before;
      const after = await repo.updateCaBundle(tx.db, tenantId, name, stored, tx.revision);
      audit(tx, tenantId, 'update', before, after);
      return after;
    });
  }

  /** Refused with 409 while a pool trusts it: its members could no longer be verified. */
  async delete(ctx: WriteContext, tenantId: string, name: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findCaBundle(tx.db, tenantId, name);
      if (!before) throw new NotFoundError('CA bundle', name);
      checkIfMatch(tx, `CA bundle '${name}'`, before.revision);
      const pools = await poolsUsingTlsMaterial(tx.db, tenantId, { caBundle: name });
      if (pools.length > 0) throw inUse(name, pools);
      try {
        await repo.deleteCaBundle(tx.db, tenantId, name);
      } catch (err) {
        // The foreign key (RESTRICT) is the backstop for a writer that bypassed the check above.
        if (pgErrorCode(err) === PG_FOREIGN_KEY_VIOLATION) throw inUse(name, []);
        throw err;
      }
      audit(tx, tenantId, 'delete', before, null);
      return null;
    });
  }
}

function toStored(parsed: ParsedCaBundle): repo.StoredCaBundle {
  return { pem: parsed.pem, entries: parsed.entries, notAfter: parsed.notAfter };
}

/** Turns the domain's CertificateError into a 400 that names the body field. */
function parseUpload(text: string, now: Date): ParsedCaBundle {
  try {
    return parseCaBundle(text, now);
  } catch (err) {
    if (!(err instanceof CertificateError)) throw err;
    const path = `body.${err.field}`;
    throw new ValidationError(`${path}: ${err.message}`, [{ path, message: err.message }], { cause: err });
  }
}

function audit(
  tx: Tx,
  tenantId: string,
  action: 'create' | 'update' | 'delete',
  before: CaBundle | null,
  after: CaBundle | null,
): void {
  const name = (after ?? before)!.name;
  tx.audit({
    action,
    resourceType: 'ca-bundle',
    resourceId: `${tenantId}/ca-bundles/${name}`,
    tenantId,
    before,
    after,
  });
}

function inUse(name: string, pools: readonly string[]): ConflictError {
  const which = pools.length === 0 ? 'a pool' : `pool(s) ${pools.map((p) => `'${p}'`).join(', ')}`;
  return new ConflictError(
    `CA bundle '${name}' is trusted by ${which} for TLS to members; point their tls.caBundle elsewhere first`,
    { pools },
  );
}
