import { sql, type Kysely } from 'kysely';

/**
 * Observed member health, per node and backend, as the reconciler reads it from each proxy
 * (`show servers state`, `show stat`). Tenant and pool are plain columns, not foreign keys: the
 * rows describe what a proxy runs, which can lag a deleted tenant until its next reload, and the
 * reconciler drops them once the proxy no longer has them. They go with their node.
 *
 * Config versions also keep a hash per structural part (node settings, each VIP, each pool, the
 * certificate set), so the plan can say what a pending reload is for, not only that one is.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table member_health (
      node_name text not null references nodes (name) on delete cascade,
      backend text not null,
      member text not null,
      tenant_id text not null,
      pool text not null,
      status text not null check (status in ('UP', 'DOWN', 'MAINT', 'DRAIN')),
      check_status text,
      check_description text,
      updated_at timestamptz not null default now(),
      primary key (node_name, backend, member)
    );
    create index member_health_tenant_idx on member_health (tenant_id, pool, member);

    alter table config_versions add column structural_parts jsonb not null default '{}'::jsonb;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table member_health;
    alter table config_versions drop column structural_parts;
  `.execute(db);
}
