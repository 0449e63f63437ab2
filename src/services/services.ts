import type { Db } from '../db/connect.js';
import { TenantService } from './tenant-service.js';
import { TokenService } from './token-service.js';

export interface ServiceOptions {
  readonly tokenCacheMs: number;
  /** 32-byte key that encrypts private keys at rest. */
  readonly secretKey: Buffer;
}

/** The use cases, built once by the composition root. */
export interface Services {
  readonly tenants: TenantService;
  readonly tokens: TokenService;
}

export function createServices(db: Db, opts: ServiceOptions): Services {
  return {
    tenants: new TenantService(db),
    tokens: new TokenService(db, opts.tokenCacheMs),
  };
}
