import { sql, type Kysely } from 'kysely';

/**
 * Allocations: each tenant's caps on each node, as the rebalancer last applied them, and every
 * change to them with its reason. Both go with their tenant and their node. The current row is
 * what the renderers and the Runtime API push enforce (no row: the tenant's reservation).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table allocations (
      tenant_id text not null references tenants (id) on delete cascade,
      node_name text not null references nodes (name) on delete cascade,
      max_connections integer not null check (max_connections >= 0),
      requests_per_second integer not null check (requests_per_second >= 0),
      weight integer not null check (weight between 0 and 256),
      reason jsonb not null,
      computed_at timestamptz not null default now(),
      revision bigint not null,
      primary key (tenant_id, node_name)
    );
    create index allocations_node_idx on allocations (node_name);

    create table allocation_history (
      id bigserial primary key,
      tenant_id text not null references tenants (id) on delete cascade,
      node_name text not null references nodes (name) on delete cascade,
      dimension text not null check (dimension in ('connections', 'requestsPerSecond')),
      from_value integer,
      to_value integer,
      reason text not null,
      detail text not null,
      revision bigint not null,
      at timestamptz not null default now()
    );
    create index allocation_history_tenant_idx on allocation_history (tenant_id, id);
    create index allocation_history_node_idx on allocation_history (node_name, at);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table allocation_history, allocations`.execute(db);
}
