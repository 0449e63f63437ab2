import { sql, type Kysely } from 'kysely';

/**
 * Placement: which nodes serve which tenant. A row places one tenant on one node, with the
 * reservation it was placed with (so that when a node runs out of room, the tenant whose
 * reservation grew is the one that moves). A node the leader finds unhealthy records why it is
 * out of placement; placement skips it until the leader clears it. `runtime_error_since` says how
 * long Runtime API pushes have been failing: one failed push is not reason enough to move tenants.
 * `reload_generation` goes up when the reconciler needs the node reloaded for a change the Runtime
 * API cannot make safely (a cap raise on a full frontend); it is part of the structural hash.
 *
 * Existing fleets served every active tenant on every node: the backfill keeps exactly that, and
 * the next placement pass trims to the wanted replica count, moving as little as it can.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table placements (
      tenant_id text not null references tenants (id) on delete cascade,
      node_name text not null references nodes (name) on delete cascade,
      reservation_vcpu numeric(10, 3) not null,
      reservation_memory_mb integer not null,
      reason text not null,
      placed_at timestamptz not null default now(),
      revision bigint not null,
      primary key (tenant_id, node_name)
    );
    create index placements_node_idx on placements (node_name);

    alter table nodes
      add column placement_excluded_reason text,
      add column placement_excluded_at timestamptz,
      add column runtime_error_since timestamptz,
      add column reload_generation integer not null default 0,
      add column reload_reason text;

    insert into placements (tenant_id, node_name, reservation_vcpu, reservation_memory_mb, reason, revision)
    select t.id, n.name, t.reservation_vcpu, t.reservation_memory_mb, 'migrated', t.revision
    from tenants t cross join nodes n
    where t.state = 'active';
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table placements;
    alter table nodes drop column placement_excluded_reason, drop column placement_excluded_at, drop column runtime_error_since,
      drop column reload_generation, drop column reload_reason;
  `.execute(db);
}
