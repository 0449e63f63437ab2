import { sql, type Kysely } from 'kysely';

/**
 * Bytes and latency in the traffic statistics (issue 15: per-tenant stats from NGINX carry bytes
 * and latency): per sample, bytes received from and sent to clients per second (HAProxy `bin` and
 * `bout`, NGINX's counters), and the mean time to answer a request in ms since the previous read
 * (NGINX: its summed request times over its requests; HAProxy: `ttime` on backends and servers,
 * none on frontends); null before this migration, without a previous read, or where the proxy
 * gives none. Rollups keep their sums, and how many samples had a latency.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table stat_samples
      add column bytes_in_rate double precision,
      add column bytes_out_rate double precision,
      add column latency_ms double precision;
    alter table stat_rollups
      add column bytes_in_rate_sum double precision not null default 0,
      add column bytes_out_rate_sum double precision not null default 0,
      add column latency_ms_sum double precision not null default 0,
      add column latency_samples integer not null default 0;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table stat_rollups
      drop column latency_samples,
      drop column latency_ms_sum,
      drop column bytes_out_rate_sum,
      drop column bytes_in_rate_sum;
    alter table stat_samples
      drop column latency_ms,
      drop column bytes_out_rate,
      drop column bytes_in_rate;
  `.execute(db);
}
