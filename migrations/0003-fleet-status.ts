import { sql, type Kysely } from 'kysely';

/**
 * What the fleet reports and what the control plane pushed. A config version's structural hash
 * covers everything a Runtime API cannot change: an agent reloads only when it changes, and
 * otherwise just writes the new files (so a later reload or restart keeps runtime changes).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table config_versions add column structural_hash text not null default '';

    alter table nodes
      add column applied_hash text,
      add column applied_at timestamptz,
      add column last_error text,
      add column last_error_at timestamptz,
      add column reload_count integer not null default 0,
      add column proxy_version text,
      add column agent_version text,
      add column runtime_revision bigint,
      add column runtime_pending integer not null default 0,
      add column runtime_error text,
      add column runtime_pushed_at timestamptz,
      add column runtime_commands_sent bigint not null default 0,
      add column runtime_commands_failed bigint not null default 0;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table config_versions drop column structural_hash;
    alter table nodes
      drop column applied_hash, drop column applied_at, drop column last_error, drop column last_error_at,
      drop column reload_count, drop column proxy_version, drop column agent_version,
      drop column runtime_revision, drop column runtime_pending, drop column runtime_error,
      drop column runtime_pushed_at, drop column runtime_commands_sent, drop column runtime_commands_failed;
  `.execute(db);
}
