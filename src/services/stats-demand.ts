import { estimateDemand, type StatsSample, type TenantDemand } from '../domain/demand.js';
import type { Db } from '../db/connect.js';
import { latestFrontendSamples } from '../db/stat-repository.js';
import type { DemandSource } from './allocation-service.js';

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
    const rows = await latestFrontendSamples(db, this.maxAgeMs);
    if (rows === null || rows.length === 0) return null;
    const newest = Math.max(...rows.map((r) => new Date(r.at).getTime()));
    if (newest <= this.newest) return this.previous;
    const samples: StatsSample[] = rows.map((r) => ({
      tenantId: r.tenantId,
      node: r.node,
      sessions: r.sessions,
      queued: 0,
      requestRate: r.requestRate,
      // Rates per second, so counts over one second. The 429s are already inside requestRate
      // (req_tot counts denied requests): they only mark saturation.
      rejected: r.deniedRate,
      rejectedInRate: true,
      refusedConnections: r.refusedRate,
      intervalSeconds: 1,
    }));
    // A node polled recently keeps its estimates through a failed poll; one silent past maxAge has none.
    const fresh = new Set(rows.map((r) => r.node));
    this.previous = estimateDemand(
      samples,
      this.previous.filter((d) => fresh.has(d.node)),
    );
    this.newest = newest;
    return this.previous;
  }
}
