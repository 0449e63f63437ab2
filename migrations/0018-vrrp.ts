import { sql, type Kysely } from 'kysely';

/**
 * VIP ownership with keepalived (VRRP). A node opts in with its VRRP settings: the interface its
 * VIPs live on, its own unicast address (what its peers talk to) and, optionally, the pid file
 * of the proxy whose death must give its VIPs up. Nodes without them render no keepalived file.
 *
 * `vrrp_routers` holds one VRRP router per VIP address and node group: its virtual_router_id
 * (unique within the group, 1..255: what peers recognise each other's adverts by) and its
 * authentication secret, sealed like certificate keys. Allocated when a node of the group first
 * renders the address, kept while the address is served, so peers always agree on both.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table nodes
      add column vrrp_interface text,
      add column vrrp_address text,
      add column vrrp_track_pid_file text;

    create table vrrp_routers (
      node_group text not null,
      address text not null,
      vrid smallint not null check (vrid between 1 and 255),
      auth_sealed text not null,
      created_at timestamptz not null default now(),
      primary key (node_group, address),
      unique (node_group, vrid)
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table vrrp_routers;
    alter table nodes drop column vrrp_interface, drop column vrrp_address, drop column vrrp_track_pid_file;
  `.execute(db);
}
