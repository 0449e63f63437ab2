import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { AddressPool, CreateAddressPool } from '../domain/address-pool.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/address-pool-repository.js';
import { checkIfMatch, mutate, type WriteContext, type Written } from './mutation.js';
import { fetchSize, toPage } from './page.js';

/** Address pools are fleet-wide: blocks from which VIP addresses are leased, each address once. */
export class AddressPoolService {
  constructor(private readonly db: Db) {}

  async list(q: {
    limit: number;
    cursor?: string | undefined;
  }): Promise<{ items: AddressPool[]; nextCursor: string | null }> {
    const items = await repo.listAddressPools(this.db, { limit: fetchSize(q.limit), after: q.cursor });
    return toPage(items, q.limit, (x) => x.name);
  }

  async get(name: string): Promise<AddressPool> {
    const pool = await repo.findAddressPool(this.db, name);
    if (!pool) throw new NotFoundError('address pool', name);
    return pool;
  }

  async create(ctx: WriteContext, input: CreateAddressPool): Promise<Written<AddressPool>> {
    return mutate(this.db, ctx, async (tx) => {
      if (await repo.findAddressPool(tx.db, input.name))
        throw new ConflictError(`address pool '${input.name}' already exists`);
      const overlaps = await repo.overlappingPools(tx.db, input.cidr);
      if (overlaps.length > 0) {
        throw new ConflictError(
          `${input.cidr} overlaps address pool ${overlaps.join(', ')}; an address may belong to one pool only`,
        );
      }
      await repo.insertAddressPool(tx.db, input, tx.revision);
      const pool = (await repo.findAddressPool(tx.db, input.name))!;
      tx.audit({
        action: 'create',
        resourceType: 'address-pool',
        resourceId: pool.name,
        tenantId: null,
        before: null,
        after: pool,
      });
      return pool;
    });
  }

  /** Refused while any address of the pool is leased: releasing them would move live VIPs. */
  async delete(ctx: WriteContext, name: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      const pool = await repo.findAddressPool(tx.db, name);
      if (!pool) throw new NotFoundError('address pool', name);
      checkIfMatch(tx, `address pool '${name}'`, pool.revision);
      if (pool.leased > 0)
        throw new ConflictError(
          `address pool '${name}' still has ${pool.leased} leased address(es); delete those VIPs first`,
        );
      await repo.deleteAddressPool(tx.db, name);
      tx.audit({
        action: 'delete',
        resourceType: 'address-pool',
        resourceId: name,
        tenantId: null,
        before: pool,
        after: null,
      });
      return null;
    });
  }
}
