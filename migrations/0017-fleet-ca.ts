import { sql, type Kysely } from 'kysely';

/**
 * The Runtime API's mutual TLS: Switchyard's own CA (generated, or supplied through the
 * environment; a supplied one that changes becomes the issuing CA while the old one stays trusted
 * until it expires), the certificates it issued (each node's, and the control plane's client
 * certificate under the subject `control-plane`), and where each HAProxy node keeps its local
 * admin and master sockets (`socket_dir`), which its mTLS listeners forward to.
 * Private keys are sealed with SWITCHYARD_SECRET_KEY like certificate keys.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table fleet_cas (
      id serial primary key,
      cert_pem text not null,
      key_sealed text not null,
      fingerprint text not null unique,
      source text not null check (source in ('generated', 'supplied')),
      not_after timestamptz not null,
      created_at timestamptz not null default now()
    );
    create table fleet_certificates (
      subject text primary key,
      node_name text unique references nodes(name) on delete cascade,
      ca_id integer not null references fleet_cas(id),
      cert_pem text not null,
      key_sealed text not null,
      serial text not null,
      not_before timestamptz not null,
      not_after timestamptz not null,
      issued_at timestamptz not null default now(),
      check ((subject = 'control-plane') = (node_name is null)),
      check (node_name is null or subject = 'node:' || node_name)
    );
    alter table nodes add column socket_dir text not null default '/run/switchyard';
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table nodes drop column socket_dir;
    drop table fleet_certificates;
    drop table fleet_cas;
  `.execute(db);
}
