import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { ApiToken, CreateToken, Principal, Role } from '../domain/token.js';
import type { Db } from '../db/connect.js';
import * as tokens from '../db/token-repository.js';
import { tenantExists } from '../db/tenant-repository.js';
import { nodeExists } from '../db/node-repository.js';
import { mutate, type WriteContext, type Written } from './mutation.js';

export const BOOTSTRAP_ADMIN = 'bootstrap-admin';

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new bearer secret: 256 random bits; the prefix makes leaked tokens easy to scan for. */
export function newSecret(): string {
  return `sy_${randomBytes(32).toString('base64url')}`;
}

interface CacheEntry {
  readonly principal: Principal | null;
  readonly until: number;
  readonly expiresAt: number | null;
}

/**
 * Bearer tokens: stored as SHA-256 hashes (the secrets are random, so no slow hash is needed),
 * shown once at creation. Resolved tokens are cached for `cacheMs` so a GET costs one query, not two;
 * a deleted token therefore stops working within `cacheMs` on other replicas (at once on this one).
 */
export class TokenService {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    private readonly db: Db,
    private readonly cacheMs: number,
  ) {}

  async authenticate(secret: string): Promise<Principal | null> {
    const hash = hashSecret(secret);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.until > now && (cached.expiresAt === null || cached.expiresAt > now)) return cached.principal;
    const row = await tokens.findTokenByHash(this.db, hash);
    // Constant-time confirmation; the index lookup itself reveals nothing useful about a random secret.
    const ok = row !== undefined && timingSafeEqual(Buffer.from(row.secret_hash), Buffer.from(hash));
    const expiresAt = row?.expires_at ? new Date(row.expires_at).getTime() : null;
    const principal: Principal | null =
      ok && (expiresAt === null || expiresAt > now)
        ? { tokenId: row.id, name: row.name, role: row.role as Role, tenantId: row.tenant_id, nodeName: row.node_name }
        : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { principal, until: now + this.cacheMs, expiresAt });
    if (principal && (!row!.last_used_at || now - new Date(row!.last_used_at).getTime() > 60_000)) {
      void tokens.touchToken(this.db, principal.tokenId, new Date(now)).catch(() => undefined);
    }
    return principal;
  }

  /** Drops every cached resolution (a token may have been revoked on another replica). */
  forgetCached(): void {
    this.cache.clear();
  }

  async list(q: { limit: number; after?: string | undefined }): Promise<ApiToken[]> {
    return (await tokens.listTokens(this.db, q)).map(tokens.toApiToken);
  }

  async get(id: string): Promise<ApiToken> {
    const row = /^[0-9a-f-]{36}$/.test(id) ? await tokens.findToken(this.db, id) : undefined;
    if (!row) throw new NotFoundError('token', id);
    return tokens.toApiToken(row);
  }

  /** Creates a token; the secret is in the answer and nowhere else, ever. */
  async create(ctx: WriteContext, input: CreateToken): Promise<Written<ApiToken & { secret: string }>> {
    return mutate(this.db, ctx, async (tx) => {
      if (input.tenant !== null && !(await tenantExists(tx.db, input.tenant)))
        throw new NotFoundError('tenant', input.tenant);
      if (input.node !== null) {
        if (!(await nodeExists(tx.db, input.node))) throw new NotFoundError('node', input.node);
      }
      if (await tokens.findTokenByName(tx.db, input.name))
        throw new ConflictError(`a token named '${input.name}' already exists`);
      const secret = newSecret();
      const row = await tokens.insertToken(tx.db, {
        name: input.name,
        role: input.role,
        tenantId: input.tenant,
        nodeName: input.node,
        secretHash: hashSecret(secret),
        expiresAt: input.expiresAt,
      });
      const token = tokens.toApiToken(row);
      tx.audit({
        action: 'create',
        resourceType: 'token',
        resourceId: token.id,
        tenantId: token.tenant,
        before: null,
        after: token,
      });
      return { ...token, secret };
    });
  }

  async delete(ctx: WriteContext, id: string): Promise<Written<null>> {
    const result = await mutate(this.db, ctx, async (tx) => {
      const row = /^[0-9a-f-]{36}$/.test(id) ? await tokens.findToken(tx.db, id) : undefined;
      if (!row) throw new NotFoundError('token', id);
      await tokens.deleteToken(tx.db, id);
      tx.audit({
        action: 'delete',
        resourceType: 'token',
        resourceId: id,
        tenantId: row.tenant_id,
        before: tokens.toApiToken(row),
        after: null,
      });
      return row.secret_hash;
    });
    for (const [hash] of this.cache) if (hash === result.value) this.cache.delete(hash);
    return { ...result, value: null };
  }

  /**
   * Makes sure an admin can get in. With `configured` (SWITCHYARD_ADMIN_TOKEN) that secret becomes
   * the bootstrap admin's; otherwise, if no admin token exists, one is generated and handed to
   * `save` inside the transaction that stores it: a token that cannot be saved is not committed, so
   * a failed start never leaves an admin nobody holds. The secret is never returned or logged.
   */
  async ensureAdmin(
    configured: string | undefined,
    save: (secret: string) => void,
  ): Promise<{ created: boolean; generated: boolean }> {
    const system: WriteContext = {
      actor: {
        principal: { tokenId: '', name: 'system', role: 'admin', tenantId: null, nodeName: null },
        requestId: 'bootstrap',
        sourceIp: null,
      },
    };
    const existing = await tokens.findTokenByName(this.db, BOOTSTRAP_ADMIN);
    if (configured !== undefined) {
      const hash = hashSecret(configured);
      if (existing?.secret_hash === hash) return { created: false, generated: false };
      await mutate(this.db, system, async (tx) => {
        if (existing) await tokens.setTokenSecret(tx.db, existing.id, hash);
        else
          await tokens.insertToken(tx.db, {
            name: BOOTSTRAP_ADMIN,
            role: 'admin',
            tenantId: null,
            nodeName: null,
            secretHash: hash,
            expiresAt: null,
          });
        tx.audit({
          action: existing ? 'update' : 'create',
          resourceType: 'token',
          resourceId: BOOTSTRAP_ADMIN,
          tenantId: null,
          before: null,
          after: { name: BOOTSTRAP_ADMIN, role: 'admin', source: 'SWITCHYARD_ADMIN_TOKEN' },
        });
      });
      return { created: !existing, generated: false };
    }
    if (await tokens.adminTokenExists(this.db)) return { created: false, generated: false };
    const secret = newSecret();
    await mutate(this.db, system, async (tx) => {
      await tokens.insertToken(tx.db, {
        name: BOOTSTRAP_ADMIN,
        role: 'admin',
        tenantId: null,
        nodeName: null,
        secretHash: hashSecret(secret),
        expiresAt: null,
      });
      tx.audit({
        action: 'create',
        resourceType: 'token',
        resourceId: BOOTSTRAP_ADMIN,
        tenantId: null,
        before: null,
        after: { name: BOOTSTRAP_ADMIN, role: 'admin', source: 'generated' },
      });
      save(secret);
    });
    return { created: true, generated: true };
  }
}
