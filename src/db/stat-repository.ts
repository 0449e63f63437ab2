import { sql } from 'kysely';
import type { RollupIncrement, StatSample } from '../domain/stats.js';
import type { Executor } from './executor.js';

// PostgreSQL takes at most 65,535 parameters per statement: a large node is written in chunks.
const CHUNK = 1000;

/** Stores one node's samples taken `at`. The caller owns the transaction. */
export async function insertSamples(db: Executor, node: string, at: Date, samples: readonly StatSample[]): Promise<void> {
  for (let i = 0; i < samples.length; i += CHUNK) {
    await db
      .insertInto('stat_samples')
      .values(
        samples.slice(i, i + CHUNK).map((s) => ({
          node_name: node,
          kind: s.kind,
          tenant_id: s.tenant,
          proxy: s.proxy,
          name: s.name,
          pool: s.pool,
          at,
          sessions: s.sessions,
          session_limit: s.sessionLimit,
          session_rate: s.sessionRate,
          requests: s.counters.requests,
          responses_2xx: s.counters.responses2xx,
          responses_4xx: s.counters.responses4xx,
          responses_5xx: s.counters.responses5xx,
          denied: s.counters.denied,
          request_rate: s.rates?.requests ?? null,
          rate_2xx: s.rates?.responses2xx ?? null,
          rate_4xx: s.rates?.responses4xx ?? null,
          rate_5xx: s.rates?.responses5xx ?? null,
          denied_rate: s.rates?.denied ?? null,
          status: s.status,
          check_status: s.checkStatus,
        })),
      )
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/** Adds one node's increments to their minute's rollup rows (created when missing). */
export async function upsertRollups(db: Executor, node: string, increments: readonly RollupIncrement[]): Promise<void> {
  for (let i = 0; i < increments.length; i += CHUNK) {
    await db
      .insertInto('stat_rollups')
      .values(
        increments.slice(i, i + CHUNK).map((r) => ({
          node_name: node,
          kind: r.kind,
          tenant_id: r.tenant,
          proxy: r.proxy,
          name: r.name,
          minute: r.minute,
          samples: r.samples,
          sessions_sum: r.sessionsSum,
          sessions_max: r.sessionsMax,
          rated: r.rated,
          request_rate_sum: r.requestRateSum,
          rate_2xx_sum: r.rate2xxSum,
          rate_4xx_sum: r.rate4xxSum,
          rate_5xx_sum: r.rate5xxSum,
          denied_rate_sum: r.deniedRateSum,
          session_limit: r.sessionLimit,
        })),
      )
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
        }),
      )
      .execute();
  }
}

/** Deletes raw samples older than `rawBefore` and rollups of minutes before `rollupsBefore`. */
export async function pruneStats(db: Executor, rawBefore: Date, rollupsBefore: Date): Promise<{ raw: number; rollups: number }> {
  const raw = await db.deleteFrom('stat_samples').where('at', '<', rawBefore).executeTakeFirst();
  const rollups = await db.deleteFrom('stat_rollups').where('minute', '<', rollupsBefore).executeTakeFirst();
  return { raw: Number(raw.numDeletedRows), rollups: Number(rollups.numDeletedRows) };
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
  readonly sessionLimit: number | null;
}

/**
 * A tenant's frontends bucketed by `stepS` over [from, to): each node's average in the bucket,
 * then summed over nodes. `source` picks raw samples or one-minute rollups.
 */
export async function frontendSeries(
  db: Executor,
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
          avg(rate_5xx) as r5, avg(denied_rate) as dn, max(session_limit) as lim
        from stat_samples
        where tenant_id = ${tenantId} and kind = 'frontend' and at >= ${window.from} and at < ${window.to}
        group by node_name, name, bucket`
      : sql`
        select node_name, name, floor(extract(epoch from minute) / ${step}) * ${step} as bucket,
          sum(request_rate_sum) / nullif(sum(rated), 0) as req, sum(sessions_sum) / sum(samples) as ses,
          sum(rate_2xx_sum) / nullif(sum(rated), 0) as r2, sum(rate_4xx_sum) / nullif(sum(rated), 0) as r4,
          sum(rate_5xx_sum) / nullif(sum(rated), 0) as r5, sum(denied_rate_sum) / nullif(sum(rated), 0) as dn,
          max(session_limit) as lim
        from stat_rollups
        where tenant_id = ${tenantId} and kind = 'frontend' and minute >= ${new Date(Math.floor(window.from.getTime() / 60_000) * 60_000)} and minute < ${window.to}
        group by node_name, name, bucket`;
  const { rows } = await sql<{
    name: string; bucket: number; req: number | null; ses: number; r2: number | null; r4: number | null; r5: number | null; dn: number | null; lim: number | null;
  }>`
    select name, bucket::float8 as bucket, sum(req)::float8 as req, sum(ses)::float8 as ses, sum(r2)::float8 as r2,
      sum(r4)::float8 as r4, sum(r5)::float8 as r5, sum(dn)::float8 as dn, sum(lim)::float8 as lim
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
    sessionLimit: r.lim,
  }));
}
