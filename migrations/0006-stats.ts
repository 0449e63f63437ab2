import { sql, type Kysely } from 'kysely';

/**
 * Traffic statistics the poller reads from each HAProxy node: raw samples (kept for
 * SWITCHYARD_STATS_RAW_RETENTION_S) and one-minute rollups (kept longer), per node and object.
 * Observed data, like member_health: no foreign keys, so a sample of a node or tenant deleted
 * meanwhile is still history until retention removes it. Rollups keep sums and counts, so an
 * upsert per poll keeps averages exact.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table stat_samples (
      node_name text not null,
      kind text not null check (kind in ('frontend', 'backend', 'member')),
      tenant_id text not null,
      proxy text not null,
      name text not null,
      pool text,
      at timestamptz not null,
      sessions integer not null,
      session_limit integer,
      session_rate double precision not null,
      requests bigint not null,
      responses_2xx bigint not null,
      responses_4xx bigint not null,
      responses_5xx bigint not null,
      denied bigint not null,
      request_rate double precision,
      rate_2xx double precision,
      rate_4xx double precision,
      rate_5xx double precision,
      denied_rate double precision,
      status text,
      check_status text,
      primary key (node_name, kind, proxy, name, at)
    );
    create index stat_samples_tenant_idx on stat_samples (tenant_id, kind, at);
    create index stat_samples_at_idx on stat_samples (at);

    create table stat_rollups (
      node_name text not null,
      kind text not null check (kind in ('frontend', 'backend', 'member')),
      tenant_id text not null,
      proxy text not null,
      name text not null,
      minute timestamptz not null,
      samples integer not null,
      sessions_sum double precision not null,
      sessions_max integer not null,
      rated integer not null,
      request_rate_sum double precision not null,
      rate_2xx_sum double precision not null,
      rate_4xx_sum double precision not null,
      rate_5xx_sum double precision not null,
      denied_rate_sum double precision not null,
      session_limit integer,
      primary key (node_name, kind, proxy, name, minute)
    );
    create index stat_rollups_tenant_idx on stat_rollups (tenant_id, kind, minute);
    create index stat_rollups_minute_idx on stat_rollups (minute);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table stat_rollups;
    drop table stat_samples;
  `.execute(db);
}
