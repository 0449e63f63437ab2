import type { Selectable } from 'kysely';
import type { ApiToken, Role } from '../domain/token.js';
import type { Db } from './connect.js';
import { iso, isoOrNull } from './column-values.js';
import type { ApiTokenTable } from './schema.js';

export type TokenRow = Selectable<ApiTokenTable>;

export function toApiToken(row: TokenRow): ApiToken {
  return {
    id: row.id,
    name: row.name,
    role: row.role as Role,
    tenant: row.tenant_id,
    node: row.node_name,
    createdAt: iso(row.created_at),
    expiresAt: isoOrNull(row.expires_at),
    lastUsedAt: isoOrNull(row.last_used_at),
  };
}

export async function findTokenByHash(db: Db, secretHash: string): Promise<TokenRow | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
}

export async function findToken(db: Db, id: string): Promise<TokenRow | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findTokenByName(db: Db, name: string): Promise<TokenRow | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('name', '=', name).executeTakeFirst();
}

/** Whether any admin token exists (the bootstrap creates one only when none does). */
export async function adminTokenExists(db: Db): Promise<boolean> {
  const row = await db.selectFrom('api_tokens').select('id').where('role', '=', 'admin').executeTakeFirst();
  return row !== undefined;
}

export async function listTokens(db: Db, q: { limit: number; after?: string | undefined }): Promise<TokenRow[]> {
  let query = db.selectFrom('api_tokens').selectAll().orderBy('name').limit(q.limit);
  if (q.after !== undefined) query = query.where('name', '>', q.after);
  return query.execute();
}

export async function insertToken(
  db: Db,
  t: {
    name: string;
    role: Role;
    tenantId: string | null;
    nodeName: string | null;
    secretHash: string;
    expiresAt: string | null;
  },
): Promise<TokenRow> {
  return db
    .insertInto('api_tokens')
    .values({
      name: t.name,
      role: t.role,
      tenant_id: t.tenantId,
      node_name: t.nodeName,
      secret_hash: t.secretHash,
      expires_at: t.expiresAt,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function setTokenSecret(db: Db, id: string, secretHash: string): Promise<void> {
  await db.updateTable('api_tokens').set({ secret_hash: secretHash }).where('id', '=', id).execute();
}

export async function deleteToken(db: Db, id: string): Promise<void> {
  await db.deleteFrom('api_tokens').where('id', '=', id).execute();
}

export async function touchToken(db: Db, id: string, at: Date): Promise<void> {
  await db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
}
