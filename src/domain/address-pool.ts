import { z } from 'zod';
import { cidr, slug } from './fields.js';
import { parseCidr } from './ip.js';

export interface AddressPool {
  readonly name: string;
  readonly cidr: string;
  /** Usable addresses (network and broadcast excluded), capped at 2^53 for JSON. */
  readonly size: number;
  readonly leased: number;
  readonly revision: number;
  readonly createdAt: string;
}

export const createAddressPoolSchema = z.strictObject({
  name: slug,
  cidr: cidr.refine((c) => {
    const parsed = parseCidr(c)!;
    // Large enough to be useful, small enough that "next free" is a short walk.
    return parsed.family === 4 ? parsed.prefix >= 8 : parsed.prefix >= 48;
  }, 'IPv4 pools may be at most a /8 and IPv6 pools at most a /48'),
});
export type CreateAddressPool = z.output<typeof createAddressPoolSchema>;
