import { sql, type Kysely } from 'kysely';

/**
 * The desired state is read incrementally: the tenants a range of revisions touched are those
 * their audit events name. Without this index that read scans the whole audit log on every build.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index audit_events_revision_idx on audit_events (revision)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index audit_events_revision_idx`.execute(db);
}
