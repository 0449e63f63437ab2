import { sql, type Kysely } from 'kysely';

/**
 * The reservations placed on each node, kept summed. Registering a tenant places it around the
 * room the others hold; summing every placement for that, inside the write lock, cost about 6 ms
 * per tenant at 10,000 tenants and grew with the fleet. A statement-level trigger keeps the sums
 * with every change to `placements` (cascaded deletes included), so that read is one row per node.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table node_bookings (
      node_name text primary key references nodes (name) on delete cascade,
      vcpu numeric(14, 3) not null default 0,
      memory_mb bigint not null default 0
    );
    insert into node_bookings (node_name, vcpu, memory_mb)
      select n.name, coalesce(sum(p.reservation_vcpu), 0), coalesce(sum(p.reservation_memory_mb), 0)
      from nodes n left join placements p on p.node_name = n.name
      group by n.name;

    create function node_bookings_add() returns trigger language plpgsql as $$
    begin
      insert into node_bookings as b (node_name, vcpu, memory_mb)
        select node_name, sum(reservation_vcpu), sum(reservation_memory_mb) from added group by node_name
        on conflict (node_name) do update set vcpu = b.vcpu + excluded.vcpu, memory_mb = b.memory_mb + excluded.memory_mb;
      return null;
    end $$;

    create function node_bookings_remove() returns trigger language plpgsql as $$
    begin
      update node_bookings b set vcpu = b.vcpu - r.vcpu, memory_mb = b.memory_mb - r.memory_mb
        from (select node_name, sum(reservation_vcpu) as vcpu, sum(reservation_memory_mb) as memory_mb from removed group by node_name) r
        where b.node_name = r.node_name;
      return null;
    end $$;

    create trigger placements_booked_insert after insert on placements
      referencing new table as added for each statement execute function node_bookings_add();
    create trigger placements_booked_delete after delete on placements
      referencing old table as removed for each statement execute function node_bookings_remove();
    -- An update is its old rows taken away and its new rows added.
    create trigger placements_booked_update_old after update on placements
      referencing old table as removed for each statement execute function node_bookings_remove();
    create trigger placements_booked_update_new after update on placements
      referencing new table as added for each statement execute function node_bookings_add();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop trigger placements_booked_update_new on placements;
    drop trigger placements_booked_update_old on placements;
    drop trigger placements_booked_delete on placements;
    drop trigger placements_booked_insert on placements;
    drop function node_bookings_remove();
    drop function node_bookings_add();
    drop table node_bookings;
  `.execute(db);
}
