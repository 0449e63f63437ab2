import { sql, type Kysely } from 'kysely';

/**
 * A tenant's proxy kind (null: every kind its group has) and the host a node runs on (null: its
 * own name, a host of its own). Placement puts a tenant only on nodes of its kind, and never on
 * two nodes of one host: two proxies there would both bind the tenant's VIP:port and silently
 * share its connections.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table tenants add column proxy_kind text check (proxy_kind in ('haproxy', 'nginx'))`.execute(db);
  await sql`alter table nodes add column host text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table nodes drop column host`.execute(db);
  await sql`alter table tenants drop column proxy_kind`.execute(db);
}
