import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { formatIp, parseCidr, usableAddresses } from '../domain/ip.js';
import { createVipSchema, type CreateVip, type PatchVip, type Vip } from '../domain/vip.js';
import type { Db } from '../db/connect.js';
import * as pools from '../db/address-pool-repository.js';
import * as repo from '../db/vip-repository.js';
import { checkIfMatch, mutate, type Tx, type WriteContext, type Written } from './mutation.js';
import { validate } from './validate.js';
import { fetchSize, toPage } from './page.js';

export class VipService {
  constructor(private readonly db: Db) {}

  async list(
    tenantId: string,
    q: { limit: number; cursor?: string | undefined },
  ): Promise<{ items: Vip[]; nextCursor: string | null }> {
    const items = await repo.listVips(this.db, tenantId, { limit: fetchSize(q.limit), after: q.cursor });
    return toPage(items, q.limit, (x) => x.name);
  }

  async get(tenantId: string, name: string): Promise<Vip> {
    const vip = await repo.findVip(this.db, tenantId, name);
    if (!vip) throw new NotFoundError('vip', name);
    return vip;
  }

  /**
   * Creates a VIP on an explicit address or on the next free address of an address pool. Writes are
   * serialised by the revision lock, so two concurrent leases can never pick the same address (and the
   * primary key on address_leases would refuse it if they did).
   */
  async create(ctx: WriteContext, tenantId: string, input: CreateVip): Promise<Written<Vip>> {
    return mutate(this.db, ctx, async (tx) => {
      if (await repo.findVip(tx.db, tenantId, input.name))
        throw new ConflictError(`vip '${input.name}' already exists`);
      await checkReferences(tx.db, tenantId, input);
      const address =
        input.addressPool !== undefined ? await nextFreeAddress(tx.db, input.addressPool) : input.address!;
      if (input.addressPool === undefined) await checkExplicitAddress(tx.db, tenantId, address);
      await checkEndpointFree(tx.db, address, input.port);
      const { addressPool, ...rest } = input;
      const vip = await repo.insertVip(
        tx.db,
        tenantId,
        { ...rest, address, addressPool: addressPool ?? null },
        tx.revision,
      );
      if (addressPool !== undefined) {
        await pools.insertLease(tx.db, { address, poolName: addressPool, tenantId, vipName: vip.name });
      }
      audit(tx, tenantId, 'create', null, vip);
      return vip;
    });
  }

  /** The name and address of a VIP are fixed; everything else may change, re-checked as a whole. */
  async patch(ctx: WriteContext, tenantId: string, name: string, patch: PatchVip): Promise<Written<Vip>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findVip(tx.db, tenantId, name);
      if (!before) throw new NotFoundError('vip', name);
      checkIfMatch(tx, `vip '${name}'`, before.revision);
      const merged = validate(createVipSchema, 'body', {
        name,
        address: before.address,
        port: patch.port ?? before.port,
        protocol: patch.protocol ?? before.protocol,
        hostnames: patch.hostnames ?? before.hostnames,
        certificate: patch.certificate !== undefined ? patch.certificate : before.certificate,
        persistence: patch.persistence ?? before.persistence,
        cookieName: patch.cookieName ?? before.cookieName,
        timeouts: { ...before.timeouts, ...patch.timeouts },
        allowlist: patch.allowlist ?? before.allowlist,
        defaultPool: patch.defaultPool !== undefined ? patch.defaultPool : before.defaultPool,
      });
      await checkReferences(tx.db, tenantId, merged);
      if (merged.port !== before.port) await checkEndpointFree(tx.db, before.address, merged.port);
      const next = { ...merged, address: before.address, addressPool: before.addressPool };
      if (sameVip(before, next)) return before;
      const after = await repo.updateVip(tx.db, tenantId, next, tx.revision);
      audit(tx, tenantId, 'update', before, after);
      return after;
    });
  }

  /** Deleting a VIP removes its routes and releases its leased address. */
  async delete(ctx: WriteContext, tenantId: string, name: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findVip(tx.db, tenantId, name);
      if (!before) throw new NotFoundError('vip', name);
      checkIfMatch(tx, `vip '${name}'`, before.revision);
      await repo.deleteVip(tx.db, tenantId, name);
      audit(tx, tenantId, 'delete', before, null);
      return null;
    });
  }
}

function audit(
  tx: Tx,
  tenantId: string,
  action: 'create' | 'update' | 'delete',
  before: Vip | null,
  after: Vip | null,
): void {
  const name = (after ?? before)!.name;
  tx.audit({ action, resourceType: 'vip', resourceId: `${tenantId}/vips/${name}`, tenantId, before, after });
}

async function checkReferences(
  db: Db,
  tenantId: string,
  v: { protocol: string; defaultPool: string | null; certificate: string | null },
): Promise<void> {
  if (v.defaultPool !== null && !(await repo.poolExists(db, tenantId, v.defaultPool))) {
    throw fieldError('body.defaultPool', `pool '${v.defaultPool}' does not exist in this tenant`);
  }
  // See PoolService: a tcp VIP passes bytes through, so its members terminate the client's TLS.
  if (v.defaultPool !== null && v.protocol === 'tcp' && (await repo.poolHasTls(db, tenantId, v.defaultPool))) {
    throw fieldError(
      'body.defaultPool',
      `pool '${v.defaultPool}' has TLS members, which serve http and https VIPs only; a tcp VIP passes bytes through to plain members`,
    );
  }
  if (v.certificate !== null && !(await repo.certificateExists(db, tenantId, v.certificate))) {
    throw fieldError('body.certificate', `certificate '${v.certificate}' does not exist in this tenant`);
  }
}

/** An explicit address may not be one another tenant holds a lease on. */
async function checkExplicitAddress(db: Db, tenantId: string, address: string): Promise<void> {
  const holder = await pools.leaseHolder(db, address);
  if (holder !== undefined && holder !== tenantId) throw new ConflictError(`${address} is leased to another tenant`);
}

/** One VIP per address:port across the fleet; the message never names another tenant's VIP. */
async function checkEndpointFree(db: Db, address: string, port: number): Promise<void> {
  if (await repo.findVipByEndpoint(db, address, port)) {
    throw new ConflictError(`${address.includes(':') ? `[${address}]` : address}:${port} is already in use by a VIP`);
  }
}

async function nextFreeAddress(db: Db, poolName: string): Promise<string> {
  const pool = await pools.findAddressPool(db, poolName);
  if (!pool) throw fieldError('body.addressPool', `address pool '${poolName}' does not exist`);
  const taken = await pools.takenAddresses(db, poolName, pool.cidr);
  let walked = 0;
  for (const ip of usableAddresses(parseCidr(pool.cidr)!)) {
    const text = formatIp(ip);
    if (!taken.has(text)) return text;
    // Every address skipped is a taken one, so the walk is bounded by the number taken.
    if (++walked > taken.size) break;
  }
  throw new ConflictError(`address pool '${poolName}' is exhausted (${pool.leased} of ${pool.size} addresses leased)`, {
    pool: poolName,
    size: pool.size,
    leased: pool.leased,
  });
}

function fieldError(path: string, message: string): ValidationError {
  return new ValidationError(`${path}: ${message}`, [{ path, message }]);
}

function sameVip(a: Vip, b: Omit<Vip, 'revision' | 'createdAt' | 'updatedAt'>): boolean {
  const key = (v: Omit<Vip, 'revision' | 'createdAt' | 'updatedAt'>) =>
    JSON.stringify([
      v.port,
      v.protocol,
      v.hostnames,
      v.certificate,
      v.persistence,
      v.cookieName,
      v.timeouts.clientMs,
      v.timeouts.serverMs,
      v.timeouts.connectMs,
      v.allowlist,
      v.defaultPool,
    ]);
  return key(a) === key(b);
}
