import { sql, type Kysely } from 'kysely';

/**
 * Rendered configuration. A config version is what one node should run: its files (sealed: they
 * carry private keys), their content hash (the ETag agents poll with) and the revision they reflect.
 * Render states remember, per proxy kind and tenant, the last part that passed validation, so one
 * tenant's bad input holds only that tenant back.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table nodes add column config_dir text not null default '/etc/switchyard'
      check (config_dir ~ '^/[A-Za-z0-9._/-]{0,200}$');

    create table config_versions (
      id bigserial primary key,
      node_name text not null references nodes (name) on delete cascade,
      revision bigint not null,
      content_hash text not null,
      -- The files hold tenants' private keys: sealed like every other key at rest.
      files_sealed text not null,
      file_names jsonb not null,
      held_tenants jsonb not null default '[]'::jsonb,
      created_at timestamptz not null default now()
    );
    create index config_versions_node_idx on config_versions (node_name, id desc);

    create table tenant_render_states (
      kind text not null check (kind in ('haproxy', 'nginx')),
      tenant_id text not null references tenants (id) on delete cascade,
      good_state jsonb,
      good_revision bigint,
      good_hash text,
      error text,
      error_revision bigint,
      updated_at timestamptz not null default now(),
      primary key (kind, tenant_id)
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table tenant_render_states, config_versions;
    alter table nodes drop column config_dir;
  `.execute(db);
}
