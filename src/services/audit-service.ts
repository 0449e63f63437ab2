import type { Db } from '../db/connect.js';
import { listAuditEvents, type AuditEvent } from '../db/audit-repository.js';
import { fetchSize, toPage, type Page } from './page.js';

export class AuditService {
  constructor(private readonly db: Db) {}

  /** Newest first; `cursor` is the last event id of the previous page. The caller has scoped `tenant`. */
  async list(q: {
    tenant?: string | undefined;
    actor?: string | undefined;
    resourceType?: string | undefined;
    since?: string | undefined;
    until?: string | undefined;
    cursor?: string | undefined;
    limit: number;
  }): Promise<Page<AuditEvent>> {
    const rows = await listAuditEvents(this.db, {
      tenant: q.tenant,
      actor: q.actor,
      resourceType: q.resourceType,
      since: q.since,
      until: q.until,
      before: q.cursor === undefined ? undefined : Number(q.cursor),
      limit: fetchSize(q.limit),
    });
    return toPage(rows, q.limit, (e) => String(e.id));
  }
}
