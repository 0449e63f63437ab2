import { sql, type Kysely } from 'kysely';

/**
 * TLS to pool members. A pool's `tls` (verify, CA bundle, SNI, client certificate, ALPN) is one
 * jsonb value; the two names in it are projected to generated columns so that foreign keys refuse
 * deleting a CA bundle or certificate a pool still uses, as they do for VIPs' certificates.
 *
 * Pools stored with an https check before pools could say their members speak TLS:
 * - without a check port, the members answered TLS on their traffic port (the check passed), so
 *   they get `tls` with `verify: none`, which is what the check did; traffic now reaches them
 *   over TLS instead of failing (502). Upload a CA bundle and set `verify: required`.
 * - with a check port, the members serve plain traffic and a TLS health endpoint elsewhere: the
 *   check becomes a tcp check on that port, the only kind allowed on plain members that still
 *   probes it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table ca_bundles (
      tenant_id text not null references tenants (id) on delete cascade,
      name text not null check (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      pem text not null,
      certificates jsonb not null,
      not_after timestamptz not null,
      revision bigint not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, name)
    );

    alter table pools add column tls jsonb;
    alter table pools add column tls_ca_bundle text generated always as (tls ->> 'caBundle') stored;
    alter table pools add column tls_client_certificate text generated always as (tls ->> 'clientCertificate') stored;
    alter table pools add foreign key (tenant_id, tls_ca_bundle) references ca_bundles (tenant_id, name) on delete restrict;
    alter table pools add foreign key (tenant_id, tls_client_certificate) references certificates (tenant_id, name) on delete restrict;

    update pools set tls = '{"verify":"none","caBundle":null,"sni":null,"clientCertificate":null,"alpn":[]}'::jsonb
      where health_check ->> 'type' = 'https' and coalesce(health_check -> 'port', 'null'::jsonb) = 'null'::jsonb;
    update pools set health_check = jsonb_set(health_check, '{type}', '"tcp"')
      where health_check ->> 'type' = 'https' and tls is null;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table pools drop column tls_client_certificate;
    alter table pools drop column tls_ca_bundle;
    alter table pools drop column tls;
    drop table ca_bundles;
  `.execute(db);
}
