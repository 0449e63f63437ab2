import { sql, type Kysely } from 'kysely';

/**
 * Tenants held on one node because its proxy could not reload with their new listeners (a port
 * another process holds, an address the node lacks): observed state, kept until an apply with the
 * tenant's current state succeeds there. `good_state` is the state the node ran when the hold began
 * (null with `good_known`: the tenant was not on the node yet).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table reload_holds (
      node_name text not null references nodes(name) on delete cascade,
      tenant_id text not null references tenants(id) on delete cascade,
      listeners jsonb not null,
      reason text not null,
      attempts integer not null default 1,
      since timestamptz not null default now(),
      retry_at timestamptz not null,
      good_known boolean not null default false,
      good_state jsonb,
      primary key (node_name, tenant_id)
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table reload_holds`.execute(db);
}
