import { sql, type Kysely } from 'kysely';

/**
 * Approval: registrations and capacity raises by registrars can wait for an admin. A rejected
 * registration stays (state 'rejected') so the decision and its reason remain visible.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table tenants drop constraint tenants_state_check;
    alter table tenants add constraint tenants_state_check
      check (state in ('pending_approval', 'active', 'suspended', 'rejected'));
    alter table tenants
      add column pending_capacity jsonb,
      add column approval_decided_by text,
      add column approval_decided_at timestamptz,
      add column approval_reason text;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table tenants drop column pending_capacity, drop column approval_decided_by,
      drop column approval_decided_at, drop column approval_reason;
    alter table tenants drop constraint tenants_state_check;
    alter table tenants add constraint tenants_state_check check (state in ('pending_approval', 'active', 'suspended'));
  `.execute(db);
}
