import { sql } from 'kysely';
import type { RollupIncrement, StatSample } from '../domain/stats.js';
import type { Db } from './connect.js';
import { PG_UNDEFINED_TABLE, pgErrorCode } from './pg-error-codes.js';

// Rows go in as one array parameter per column through `unnest`: one statement per node whatever
// its size, ~20 parameters instead of ~20 per row, constant columns sent once. Building and binding
// a VALUES list cost the poller ~11 µs of CPU per row; the arrays cost ~3 µs.

/** Stores one node's samples taken `at`. The caller owns the transaction. */
export async function insertSamples(db: Db, node: string, at: Date, samples: readonly StatSample[]): Promise<void> {
  if (samples.length === 0) return;
  const c = <V>(pick: (s: StatSample) => V): V[] => samples.map(pick);
  await db
    .insertInto('stat_samples')
    .columns([
      'node_name',
      'kind',
      'tenant_id',
      'proxy',
      'name',
      'pool',
      'at',
      'sessions',
      'session_limit',
      'session_rate',
      'requests',
      'responses_2xx',
      'responses_4xx',
      'responses_5xx',
      'denied',
      'request_rate',
      'rate_2xx',
      'rate_4xx',
      'rate_5xx',
      'denied_rate',
      'refused_rate',
      'status',
      'check_status',
      'bytes_in_rate',
      'bytes_out_rate',
      'latency_ms',
    ])
    .expression(sql`
      select ${node}::text, kind, tenant_id, proxy, name, pool, ${at}::timestamptz, sessions, session_limit, session_rate, requests,
        responses_2xx, responses_4xx, responses_5xx, denied, request_rate, rate_2xx, rate_4xx, rate_5xx, denied_rate, refused_rate, status, check_status,
        bytes_in_rate, bytes_out_rate, latency_ms
      from unnest(
        ${c((s) => s.kind)}::text[], ${c((s) => s.tenant)}::text[], ${c((s) => s.proxy)}::text[], ${c((s) => s.name)}::text[],
        ${c((s) => s.pool)}::text[], ${c((s) => s.sessions)}::integer[], ${c((s) => s.sessionLimit)}::integer[],
        ${c((s) => s.sessionRate)}::float8[], ${c((s) => s.counters.requests)}::bigint[], ${c((s) => s.counters.responses2xx)}::bigint[],
        ${c((s) => s.counters.responses4xx)}::bigint[], ${c((s) => s.counters.responses5xx)}::bigint[], ${c((s) => s.counters.denied)}::bigint[],
        ${c((s) => s.rates?.requests ?? null)}::float8[], ${c((s) => s.rates?.responses2xx ?? null)}::float8[],
        ${c((s) => s.rates?.responses4xx ?? null)}::float8[], ${c((s) => s.rates?.responses5xx ?? null)}::float8[],
        ${c((s) => s.rates?.denied ?? null)}::float8[], ${c((s) => s.rates?.refused ?? null)}::float8[], ${c((s) => s.status)}::text[], ${c((s) => s.checkStatus)}::text[],
        ${c((s) => s.rates?.bytesIn ?? null)}::float8[], ${c((s) => s.rates?.bytesOut ?? null)}::float8[], ${c((s) => s.latencyMs ?? null)}::float8[]
      ) as r(kind, tenant_id, proxy, name, pool, sessions, session_limit, session_rate, requests, responses_2xx, responses_4xx,
        responses_5xx, denied, request_rate, rate_2xx, rate_4xx, rate_5xx, denied_rate, refused_rate, status, check_status,
        bytes_in_rate, bytes_out_rate, latency_ms)`)
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** Adds one node's increments to their minute's rollup rows (created when missing). */
export async function upsertRollups(db: Db, node: string, increments: readonly RollupIncrement[]): Promise<void> {
  if (increments.length === 0) return;
  const c = <V>(pick: (r: RollupIncrement) => V): V[] => increments.map(pick);
  await db
    .insertInto('stat_rollups')
    .columns([
      'node_name',
      'kind',
      'tenant_id',
      'proxy',
      'name',
      'minute',
      'samples',
      'sessions_sum',
      'sessions_max',
      'rated',
      'request_rate_sum',
      'rate_2xx_sum',
      'rate_4xx_sum',
      'rate_5xx_sum',
      'denied_rate_sum',
      'session_limit',
      'bytes_in_rate_sum',
      'bytes_out_rate_sum',
      'latency_ms_sum',
      'latency_samples',
    ])
    .expression(sql`
      select ${node}::text, kind, tenant_id, proxy, name, minute, samples, sessions_sum, sessions_max, rated, request_rate_sum,
        rate_2xx_sum, rate_4xx_sum, rate_5xx_sum, denied_rate_sum, session_limit, bytes_in_rate_sum, bytes_out_rate_sum,
        latency_ms_sum, latency_samples
      from unnest(
        ${c((r) => r.kind)}::text[], ${c((r) => r.tenant)}::text[], ${c((r) => r.proxy)}::text[], ${c((r) => r.name)}::text[],
        ${c((r) => r.minute)}::timestamptz[], ${c((r) => r.samples)}::integer[], ${c((r) => r.sessionsSum)}::float8[],
        ${c((r) => r.sessionsMax)}::integer[], ${c((r) => r.rated)}::integer[], ${c((r) => r.requestRateSum)}::float8[],
        ${c((r) => r.rate2xxSum)}::float8[], ${c((r) => r.rate4xxSum)}::float8[], ${c((r) => r.rate5xxSum)}::float8[],
        ${c((r) => r.deniedRateSum)}::float8[], ${c((r) => r.sessionLimit)}::integer[],
        ${c((r) => r.bytesInRateSum)}::float8[], ${c((r) => r.bytesOutRateSum)}::float8[], ${c((r) => r.latencyMsSum)}::float8[],
        ${c((r) => r.latencySamples)}::integer[]
      ) as r(kind, tenant_id, proxy, name, minute, samples, sessions_sum, sessions_max, rated, request_rate_sum, rate_2xx_sum,
        rate_4xx_sum, rate_5xx_sum, denied_rate_sum, session_limit, bytes_in_rate_sum, bytes_out_rate_sum, latency_ms_sum,
        latency_samples)`)
    .onConflict((oc) =>
      oc.columns(['node_name', 'kind', 'proxy', 'name', 'minute']).doUpdateSet({
        tenant_id: sql.ref('excluded.tenant_id'),
        samples: sql`stat_rollups.samples + excluded.samples`,
        sessions_sum: sql`stat_rollups.sessions_sum + excluded.sessions_sum`,
        sessions_max: sql`greatest(stat_rollups.sessions_max, excluded.sessions_max)`,
        rated: sql`stat_rollups.rated + excluded.rated`,
        request_rate_sum: sql`stat_rollups.request_rate_sum + excluded.request_rate_sum`,
        rate_2xx_sum: sql`stat_rollups.rate_2xx_sum + excluded.rate_2xx_sum`,
        rate_4xx_sum: sql`stat_rollups.rate_4xx_sum + excluded.rate_4xx_sum`,
        rate_5xx_sum: sql`stat_rollups.rate_5xx_sum + excluded.rate_5xx_sum`,
        denied_rate_sum: sql`stat_rollups.denied_rate_sum + excluded.denied_rate_sum`,
        session_limit: sql`coalesce(excluded.session_limit, stat_rollups.session_limit)`,
        bytes_in_rate_sum: sql`stat_rollups.bytes_in_rate_sum + excluded.bytes_in_rate_sum`,
        bytes_out_rate_sum: sql`stat_rollups.bytes_out_rate_sum + excluded.bytes_out_rate_sum`,
        latency_ms_sum: sql`stat_rollups.latency_ms_sum + excluded.latency_ms_sum`,
        latency_samples: sql`stat_rollups.latency_samples + excluded.latency_samples`,
      }),
    )
    .execute();
}

/** Deletes raw samples older than `rawBefore` and rollups of minutes before `rollupsBefore`. */
export async function pruneStats(
  db: Db,
  rawBefore: Date,
  rollupsBefore: Date,
): Promise<{ raw: number; rollups: number }> {
  const raw = await db.deleteFrom('stat_samples').where('at', '<', rawBefore).executeTakeFirst();
  const rollups = await db.deleteFrom('stat_rollups').where('minute', '<', rollupsBefore).executeTakeFirst();
  return { raw: Number(raw.numDeletedRows), rollups: Number(rollups.numDeletedRows) };
}

/** One frontend's row of a node's latest poll; rates per second (0 where the proxy gave none). */
export interface LatestFrontendSample {
  readonly node: string;
  readonly tenantId: string;
  readonly sessions: number;
  readonly requestRate: number;
  readonly deniedRate: number;
  readonly refusedRate: number;
  readonly at: Date;
}

/**
 * The frontend rows of each node's latest poll, for nodes polled within `maxAgeMs`; null when
 * there is no stats table (migrations/0006-stats.ts not applied).
 */
export async function latestFrontendSamples(db: Db, maxAgeMs: number): Promise<LatestFrontendSample[] | null> {
  try {
    const { rows } = await sql<{
      node_name: string;
      tenant_id: string;
      sessions: number;
      request_rate: number;
      denied_rate: number;
      refused_rate: number;
      at: Date;
    }>`
      select s.node_name, s.tenant_id, s.sessions, coalesce(s.request_rate, 0)::float8 as request_rate,
             coalesce(s.denied_rate, 0)::float8 as denied_rate, coalesce(s.refused_rate, 0)::float8 as refused_rate, s.at
      from stat_samples s
      join (select node_name, max(at) as at from stat_samples
            where kind = 'frontend' and at > now() - make_interval(secs => ${maxAgeMs / 1000})
            group by node_name) latest on latest.node_name = s.node_name and latest.at = s.at
      where s.kind = 'frontend'
    `.execute(db);
    return rows.map((r) => ({
      node: r.node_name,
      tenantId: r.tenant_id,
      sessions: r.sessions,
      requestRate: r.request_rate,
      deniedRate: r.denied_rate,
      refusedRate: r.refused_rate,
      at: r.at,
    }));
  } catch (err) {
    if (pgErrorCode(err) === PG_UNDEFINED_TABLE) return null;
    throw err;
  }
}

export interface SeriesRow {
  readonly vip: string;
  /** Start of the bucket, epoch seconds. */
  readonly bucket: number;
  readonly requestRate: number | null;
  readonly sessions: number;
  readonly rate2xx: number | null;
  readonly rate4xx: number | null;
  readonly rate5xx: number | null;
  readonly deniedRate: number | null;
  readonly bytesInRate: number | null;
  readonly bytesOutRate: number | null;
  readonly latencyMs: number | null;
  readonly sessionLimit: number | null;
}

/**
 * A tenant's frontends bucketed by `stepS` over [from, to): each node's average in the bucket,
 * then summed over nodes (latency: averaged over nodes weighted by their request rates). `source`
 * picks raw samples or one-minute rollups.
 */
export async function frontendSeries(
  db: Db,
  tenantId: string,
  window: { from: Date; to: Date; stepS: number },
  source: 'raw' | 'rollup',
): Promise<SeriesRow[]> {
  const step = window.stepS;
  const perNode =
    source === 'raw'
      ? sql`
        select node_name, name, floor(extract(epoch from at) / ${step}) * ${step} as bucket,
          avg(request_rate) as req, avg(sessions) as ses, avg(rate_2xx) as r2, avg(rate_4xx) as r4,
          avg(rate_5xx) as r5, avg(denied_rate) as dn, max(session_limit) as lim,
          avg(bytes_in_rate) as bi, avg(bytes_out_rate) as bo, avg(latency_ms) as lat
        from stat_samples
        where tenant_id = ${tenantId} and kind = 'frontend' and at >= ${window.from} and at < ${window.to}
        group by node_name, name, bucket`
      : sql`
        select node_name, name, floor(extract(epoch from minute) / ${step}) * ${step} as bucket,
          sum(request_rate_sum) / nullif(sum(rated), 0) as req, sum(sessions_sum) / sum(samples) as ses,
          sum(rate_2xx_sum) / nullif(sum(rated), 0) as r2, sum(rate_4xx_sum) / nullif(sum(rated), 0) as r4,
          sum(rate_5xx_sum) / nullif(sum(rated), 0) as r5, sum(denied_rate_sum) / nullif(sum(rated), 0) as dn,
          max(session_limit) as lim, sum(bytes_in_rate_sum) / nullif(sum(rated), 0) as bi,
          sum(bytes_out_rate_sum) / nullif(sum(rated), 0) as bo,
          sum(latency_ms_sum) / nullif(sum(latency_samples), 0) as lat
        from stat_rollups
        where tenant_id = ${tenantId} and kind = 'frontend' and minute >= ${new Date(Math.floor(window.from.getTime() / 60_000) * 60_000)} and minute < ${window.to}
        group by node_name, name, bucket`;
  const { rows } = await sql<{
    name: string;
    bucket: number;
    req: number | null;
    ses: number;
    r2: number | null;
    r4: number | null;
    r5: number | null;
    dn: number | null;
    lim: number | null;
    bi: number | null;
    bo: number | null;
    lat: number | null;
  }>`
    select name, bucket::float8 as bucket, sum(req)::float8 as req, sum(ses)::float8 as ses, sum(r2)::float8 as r2,
      sum(r4)::float8 as r4, sum(r5)::float8 as r5, sum(dn)::float8 as dn, sum(lim)::float8 as lim,
      sum(bi)::float8 as bi, sum(bo)::float8 as bo,
      coalesce(sum(lat * req) / nullif(sum(req) filter (where lat is not null), 0), avg(lat))::float8 as lat
    from (${perNode}) per_node
    group by name, bucket
    order by name, bucket`.execute(db);
  return rows.map((r) => ({
    vip: r.name,
    bucket: Number(r.bucket),
    requestRate: r.req,
    sessions: r.ses,
    rate2xx: r.r2,
    rate4xx: r.r4,
    rate5xx: r.r5,
    deniedRate: r.dn,
    bytesInRate: r.bi,
    bytesOutRate: r.bo,
    latencyMs: r.lat,
    sessionLimit: r.lim,
  }));
}
