import { sql, type Kysely } from 'kysely';

/**
 * Config versions stored as segments. A node's files are the joins of segments (per-tenant parts);
 * each segment is stored once under its keyed digest, and a version keeps only its manifest: the
 * file names and their segments' digests in order. A one-tenant change then stores one tenant's
 * part and a manifest instead of the whole config again (10 MB at 10,000 tenants).
 *
 * Rows stored before keep their sealed files (`files_sealed`) and no manifest; new rows have a
 * manifest and no sealed files. Segments are shared by every version and node that uses them;
 * the store's sweep deletes those no version references any more.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table config_segments (
      -- HMAC-SHA256 under a key derived from the secret key: names the content without revealing it.
      digest bytea primary key check (octet_length(digest) = 32),
      -- Plain text, or SecretBox-sealed when the segment holds a private key (sealed = true).
      content text not null,
      sealed boolean not null,
      created_at timestamptz not null default now()
    );

    alter table config_versions
      add column manifest bytea,
      alter column files_sealed drop not null,
      add constraint config_versions_files_stored check ((manifest is null) <> (files_sealed is null));
  `.execute(db);
}

/**
 * Versions stored as manifests cannot be turned back into sealed files here (that needs the
 * secret key): they are deleted, and the next build stores the node's config the old way.
 */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    delete from config_versions where manifest is not null;
    alter table config_versions
      drop constraint config_versions_files_stored,
      alter column files_sealed set not null,
      drop column manifest;
    drop table config_segments;
  `.execute(db);
}
