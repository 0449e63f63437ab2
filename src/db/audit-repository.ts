import { sql } from 'kysely';
import { CHANGES_CHANNEL } from './change-channel.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';

export interface AuditEvent {
  readonly id: number;
  readonly at: string;
  readonly revision: number;
  readonly actor: string;
  readonly tokenId: string | null;
  readonly requestId: string;
  readonly sourceIp: string | null;
  readonly tenant: string | null;
  readonly action: string;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly before: unknown;
  readonly after: unknown;
}

/** An event to record: what changed, by whom, at which revision. */
export type NewAuditEvent = Omit<AuditEvent, 'id' | 'at'>;

/**
 * Writes a write's audit events and sends `notification` on the changes channel in one statement
 * (one round trip per write), inside the caller's transaction: both happen only if it commits.
 */
export async function insertAuditEventsAndNotify(
  trx: Db,
  events: readonly NewAuditEvent[],
  notification: string,
): Promise<void> {
  await trx
    .with('audited', (q) => q.insertInto('audit_events').values(events.map(auditColumns)).returning('id'))
    .selectNoFrom(sql<string>`pg_notify(${CHANGES_CHANNEL}, ${notification})`.as('notified'))
    .execute();
}

function auditColumns(e: NewAuditEvent) {
  return {
    revision: e.revision,
    actor: e.actor,
    token_id: e.tokenId,
    request_id: e.requestId,
    source_ip: e.sourceIp,
    tenant_id: e.tenant,
    action: e.action,
    resource_type: e.resourceType,
    resource_id: e.resourceId,
    before: e.before === null || e.before === undefined ? null : JSON.stringify(e.before),
    after: e.after === null || e.after === undefined ? null : JSON.stringify(e.after),
  };
}

export interface AuditQuery {
  readonly tenant?: string | undefined;
  readonly actor?: string | undefined;
  readonly resourceType?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  /** Events older than this id (newest first paging). */
  readonly before?: number | undefined;
  readonly limit: number;
}

/** Newest first; every filter is optional and they combine with AND. */
export async function listAuditEvents(db: Db, q: AuditQuery): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events').selectAll().orderBy('id', 'desc').limit(q.limit);
  if (q.tenant !== undefined) query = query.where('tenant_id', '=', q.tenant);
  if (q.actor !== undefined) query = query.where('actor', '=', q.actor);
  if (q.resourceType !== undefined) query = query.where('resource_type', '=', q.resourceType);
  if (q.since !== undefined) query = query.where('at', '>=', new Date(q.since));
  if (q.until !== undefined) query = query.where('at', '<', new Date(q.until));
  if (q.before !== undefined) query = query.where(sql<boolean>`id < ${q.before}`);
  const rows = await query.execute();
  return rows.map((r) => ({
    id: Number(r.id),
    at: iso(r.at),
    revision: Number(r.revision),
    actor: r.actor,
    tokenId: r.token_id,
    requestId: r.request_id,
    sourceIp: r.source_ip,
    tenant: r.tenant_id,
    action: r.action,
    resourceType: r.resource_type,
    resourceId: r.resource_id,
    before: r.before,
    after: r.after,
  }));
}
