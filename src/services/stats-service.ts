import type { Db } from '../db/connect.js';
import { frontendSeries } from '../db/stat-repository.js';
import { ValidationError } from '../domain/errors.js';
import { seriesSource, windowProblem, type SeriesWindow, type StatPoint } from '../domain/stats.js';

export interface StatsSeries {
  readonly tenant: string;
  readonly from: string;
  readonly to: string;
  readonly step: number;
  /** Raw samples, or one-minute rollups for a window older than raw retention. */
  readonly source: 'raw' | 'rollup';
  /** One series per VIP frontend, points only where samples exist, summed over nodes. */
  readonly vips: readonly { readonly vip: string; readonly points: readonly StatPoint[] }[];
}

const round = (v: number | null): number => (v === null ? 0 : Math.round(v * 1000) / 1000);

/** Reads a tenant's traffic time series (tenant existence and access are the API's to check). */
export class StatsService {
  constructor(
    private readonly db: Db,
    private readonly options: { readonly rawRetentionS: number },
  ) {}

  /** `now`: the moment the window was taken at (its default end), so both see the same clock. */
  async series(tenant: string, window: SeriesWindow, now: Date = new Date()): Promise<StatsSeries> {
    const problem = windowProblem(window);
    if (problem !== null) {
      throw new ValidationError(`query.${problem.field}: ${problem.message}`, [
        { path: `query.${problem.field}`, message: problem.message },
      ]);
    }
    const source = seriesSource(window.from, now, this.options.rawRetentionS);
    const rows = await frontendSeries(this.db, tenant, window, source);
    const byVip = new Map<string, StatPoint[]>();
    for (const r of rows) {
      const points = byVip.get(r.vip) ?? [];
      byVip.set(r.vip, points);
      points.push({
        at: new Date(r.bucket * 1000).toISOString(),
        requestRate: round(r.requestRate),
        sessions: round(r.sessions),
        rate2xx: round(r.rate2xx),
        rate4xx: round(r.rate4xx),
        rate5xx: round(r.rate5xx),
        rate429: round(r.deniedRate),
        bytesInRate: round(r.bytesInRate),
        bytesOutRate: round(r.bytesOutRate),
        latencyMs: r.latencyMs === null ? null : round(r.latencyMs),
        sessionLimit: r.sessionLimit,
      });
    }
    return {
      tenant,
      from: window.from.toISOString(),
      to: window.to.toISOString(),
      step: window.stepS,
      source,
      vips: [...byVip].map(([vip, points]) => ({ vip, points })),
    };
  }
}
