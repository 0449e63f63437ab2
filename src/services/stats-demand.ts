import { sql } from 'kysely';
import { estimateDemand, type StatsSample, type TenantDemand } from '../domain/allocation.js';
import type { Db } from '../db/connect.js';
import { pgErrorCode } from '../db/pg-error-codes.js';
import type { DemandSource } from './allocation-service.js';

const PG_UNDEFINED_TABLE = '42P01';

/**
 * Tenant demand from the stats poller's samples (migrations/0006-stats.ts): each node's latest
 * poll of the tenants' frontends, no older than `maxAgeMs`: connections = current sessions, req/s
 * = the frontend's request rate, which already counts the requests the cap turned away with 429
 * (HAProxy's req_tot counts every request the frontend parsed, denied or not), smoothed
 * across polls by `estimateDemand`. 429s and connections refused at the cap since the previous
 * poll mark the tenant saturated: its cap hides how much more it wants. A poll already counted
 * is not smoothed twice. Answers null (no demand signal) when there are no fresh samples or no
 * stats table.
 */
export class StatsDemandSource implements DemandSource {
  private previous: TenantDemand[] = [];
  private newest = 0;

  constructor(private readonly maxAgeMs = 60_000) {}

  async demand(db: Db): Promise<TenantDemand[] | null> {
    let rows: { node_name: string; tenant_id: string; sessions: number; request_rate: number; denied_rate: number; refused_rate: number; at: Date }[];
    try {
      ({ rows } = await sql<(typeof rows)[number]>`
        select s.node_name, s.tenant_id, s.sessions, coalesce(s.request_rate, 0)::float8 as request_rate,
               coalesce(s.denied_rate, 0)::float8 as denied_rate, coalesce(s.refused_rate, 0)::float8 as refused_rate, s.at
        from stat_samples s
        join (select node_name, max(at) as at from stat_samples
              where kind = 'frontend' and at > now() - make_interval(secs => ${this.maxAgeMs / 1000})
              group by node_name) latest on latest.node_name = s.node_name and latest.at = s.at
        where s.kind = 'frontend'
      `.execute(db));
    } catch (err) {
      if (pgErrorCode(err) === PG_UNDEFINED_TABLE) return null;
      throw err;
    }
    if (rows.length === 0) return null;
    const newest = Math.max(...rows.map((r) => new Date(r.at).getTime()));
    if (newest <= this.newest) return this.previous;
    const samples: StatsSample[] = rows.map((r) => ({
      tenantId: r.tenant_id,
      node: r.node_name,
      sessions: r.sessions,
      queued: 0,
      requestRate: r.request_rate,
      // Rates per second, so counts over one second. The 429s are already inside requestRate
      // (req_tot counts denied requests): they only mark saturation.
      rejected: r.denied_rate,
      rejectedInRate: true,
      refusedConnections: r.refused_rate,
      intervalSeconds: 1,
    }));
    // A node polled recently keeps its estimates through a failed poll; one silent past maxAge has none.
    const fresh = new Set(rows.map((r) => r.node_name));
    this.previous = estimateDemand(samples, this.previous.filter((d) => fresh.has(d.node)));
    this.newest = newest;
    return this.previous;
  }
}
