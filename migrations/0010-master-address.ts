import { sql, type Kysely } from 'kysely';

/**
 * A HAProxy node's master CLI on TCP (`haproxy -W -S ipv4@host:port`): the stats poller asks it
 * for the old workers a reload left serving sessions, which the Runtime API no longer reaches.
 * Optional, so existing nodes keep null and are polled as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table nodes
      add column master_host inet,
      add column master_port integer check (master_port between 1 and 65535),
      add constraint nodes_master_address_check check ((master_host is null) = (master_port is null));
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table nodes
      drop constraint nodes_master_address_check,
      drop column master_port,
      drop column master_host;
  `.execute(db);
}
