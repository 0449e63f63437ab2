import { sql } from 'kysely';
import type { Db } from './connect.js';
import { asBuffer, iso } from './column-values.js';

/**
 * A stored config version; its files are opened by the service (services/config/config-store.ts), never
 * here. Exactly one of `manifest` (rows stored as segments) and `filesSealed` (rows stored before
 * migration 0013: all files as one sealed JSON object) is set.
 */
export interface StoredConfigVersion {
  readonly id: number;
  readonly nodeName: string;
  readonly revision: number;
  readonly contentHash: string;
  readonly structuralHash: string;
  readonly filesSealed: string | null;
  readonly manifest: Buffer | null;
  readonly fileNames: readonly string[];
  readonly heldTenants: readonly HeldTenant[];
  readonly createdAt: string;
}

/** A tenant served at its last good state (or not at all): its current state did not validate, or did not bind on the node. */
export interface HeldTenant {
  readonly tenant: string;
  readonly error: string;
  /** The revision of the state still served, or null when the tenant is left out entirely. */
  readonly servingRevision: number | null;
  /**
   * `reload`: held on this node only, because the node could not bind its new listeners (a port in
   * use, an address it lacks); absent: its state did not validate for the node's kind.
   */
  readonly cause?: 'reload';
}

/**
 * The node's newest stored version. Without `files` its manifest and sealed files are left out
 * (null): what long polls and status checks compare, read on every change without the manifest
 * (224 KB at 10,000 tenants); `configVersionById` reads the whole row when the files are needed.
 */
export async function latestConfigVersion(
  db: Db,
  nodeName: string,
  opts: { files?: boolean } = {},
): Promise<StoredConfigVersion | undefined> {
  const row = await versionRows(db, opts.files ?? true)
    .where('node_name', '=', nodeName)
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row && toStoredVersion(row);
}

/** One stored version, whole. */
export async function configVersionById(db: Db, id: number): Promise<StoredConfigVersion | undefined> {
  const row = await versionRows(db, true).where(sql<boolean>`id = ${id}`).executeTakeFirst();
  return row && toStoredVersion(row);
}

function versionRows(db: Db, files: boolean) {
  return db
    .selectFrom('config_versions')
    .select([
      'id',
      'node_name',
      'revision',
      'content_hash',
      'structural_hash',
      'file_names',
      'held_tenants',
      'created_at',
    ])
    .select(files ? sql<string | null>`files_sealed`.as('files_sealed') : sql<null>`null`.as('files_sealed'))
    .select(files ? sql<Uint8Array | null>`manifest`.as('manifest') : sql<null>`null`.as('manifest'));
}

function toStoredVersion(row: {
  id: unknown;
  node_name: string;
  revision: unknown;
  content_hash: string;
  structural_hash: string;
  file_names: string[];
  held_tenants: unknown;
  created_at: Date;
  files_sealed: string | null;
  manifest: Uint8Array | null;
}): StoredConfigVersion {
  return {
    id: Number(row.id),
    nodeName: row.node_name,
    revision: Number(row.revision),
    contentHash: row.content_hash,
    structuralHash: row.structural_hash,
    filesSealed: row.files_sealed,
    manifest: asBuffer(row.manifest),
    fileNames: row.file_names,
    heldTenants: row.held_tenants as HeldTenant[],
    createdAt: iso(row.created_at),
  };
}

/**
 * The structure of the newest stored version of a node's config with these contents (what a node
 * that applied them runs): its parts as chunk digests (`structureChunks`, opened by the config
 * store) or, on rows stored before migration 0023, as JSON (`structuralParts`).
 */
export async function structureOfVersion(
  db: Db,
  nodeName: string,
  contentHash: string,
): Promise<
  | {
      revision: number;
      structuralHash: string;
      structuralParts: Record<string, string>;
      structureChunks: Buffer | null;
    }
  | undefined
> {
  const row = await db
    .selectFrom('config_versions as v')
    .select(['v.revision', 'v.structural_hash'])
    .select(
      // A version stored with the structure of the one before carries no parts of its own: the
      // newest version of the node with the same structural hash that has them stands in.
      sql<{ parts: Record<string, string>; chunks: string | null }>`coalesce(
        (select jsonb_build_object('parts', w.structural_parts, 'chunks', encode(w.structure_chunks, 'base64'))
          from config_versions w
          where w.node_name = v.node_name and w.structural_hash = v.structural_hash
            and (w.structure_chunks is not null or w.structural_parts <> '{}'::jsonb)
          order by (w.id = v.id) desc, w.id desc limit 1),
        '{"parts": {}, "chunks": null}'::jsonb)`.as('structure'),
    )
    .where('v.node_name', '=', nodeName)
    .where('v.content_hash', '=', contentHash)
    .orderBy('v.id', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  const { parts, chunks } = row.structure;
  return {
    revision: Number(row.revision),
    structuralHash: row.structural_hash,
    structuralParts: parts,
    structureChunks: chunks === null ? null : Buffer.from(chunks, 'base64'),
  };
}

/**
 * The revisions a stored version of the node's config with these contents stands for, or
 * undefined when none is stored (never built for the node, or pruned): from the one it was first
 * built at (null for versions stored before that was kept) to the newest. A version's revision
 * only grows (see `advanceConfigVersion`), so an agent that fetched it earlier reports a lower one.
 */
export async function revisionsOfVersion(
  db: Db,
  nodeName: string,
  contentHash: string,
): Promise<{ first: number | null; newest: number } | undefined> {
  const row = await db
    .selectFrom('config_versions')
    .select((eb) => [eb.fn.max('revision').as('newest'), eb.fn.min('built_revision').as('first')])
    .where('node_name', '=', nodeName)
    .where('content_hash', '=', contentHash)
    .executeTakeFirst();
  if (row?.newest === null || row?.newest === undefined) return undefined;
  return { first: row.first === null ? null : Number(row.first), newest: Number(row.newest) };
}

/** The tenants held in the newest stored version of the node's config with these contents, or undefined when none is stored. */
export async function heldTenantsOfVersion(
  db: Db,
  nodeName: string,
  contentHash: string,
): Promise<string[] | undefined> {
  const row = await db
    .selectFrom('config_versions')
    .select('held_tenants')
    .where('node_name', '=', nodeName)
    .where('content_hash', '=', contentHash)
    .orderBy('id', 'desc')
    .executeTakeFirst();
  return row === undefined ? undefined : (row.held_tenants as { tenant: string }[]).map((h) => h.tenant);
}

/**
 * Stores a version with either its sealed files (the format before migration 0013) or its
 * manifest, whose segments the caller has stored in the same transaction (ConfigStore.insert).
 * Answers the new row's id.
 */
export async function insertConfigVersion(
  db: Db,
  v: {
    nodeName: string;
    revision: number;
    contentHash: string;
    structuralHash: string;
    structuralParts?: Readonly<Record<string, string>>;
    /** Digests of the chunks holding the structural parts (ConfigStore), instead of `structuralParts`. */
    structureChunks?: Buffer | null;
    fileNames: readonly string[];
    heldTenants: readonly HeldTenant[];
  } & ({ filesSealed: string; manifest?: undefined } | { manifest: Buffer; filesSealed?: undefined }),
): Promise<number> {
  const row = await db
    .insertInto('config_versions')
    .values({
      node_name: v.nodeName,
      revision: v.revision,
      built_revision: v.revision,
      content_hash: v.contentHash,
      structural_hash: v.structuralHash,
      structural_parts: JSON.stringify(v.structuralParts ?? {}),
      structure_chunks: v.structureChunks ?? null,
      files_sealed: v.filesSealed ?? null,
      manifest: v.manifest ?? null,
      file_names: JSON.stringify(v.fileNames),
      held_tenants: JSON.stringify(v.heldTenants),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/** Marks an unchanged version as reflecting a newer revision. */
export async function advanceConfigVersion(db: Db, id: number, revision: number): Promise<void> {
  await db.updateTable('config_versions').set({ revision }).where(sql<boolean>`id = ${id}`).execute();
}

/**
 * Keeps the newest `keep` versions of a node (history for rollbacks and audits, bounded), and
 * always the newest one with the contents its agent last reported applying: that is what the node
 * runs, so its reports, its reload reasons and the plan still know it however far it is behind.
 * Also kept: the newest version that carries the structural parts of that running version (a
 * version stored with the structure of the one before has none of its own; see
 * structureOfVersion), or after `keep` runtime-only changes the plan could no longer say what a
 * reload is for.
 */
export async function pruneConfigVersions(db: Db, nodeName: string, keep: number): Promise<void> {
  const cutoff = await db
    .selectFrom('config_versions')
    .select('id')
    .where('node_name', '=', nodeName)
    .orderBy('id', 'desc')
    .offset(keep)
    .limit(1)
    .executeTakeFirst();
  if (!cutoff) return;
  const running = await db
    .selectFrom('config_versions as cv')
    .innerJoin('nodes', 'nodes.name', 'cv.node_name')
    .select((eb) => eb.fn.max('cv.id').as('id'))
    .where('cv.node_name', '=', nodeName)
    .whereRef('cv.content_hash', '=', 'nodes.applied_hash')
    .executeTakeFirst();
  let prune = db.deleteFrom('config_versions').where('node_name', '=', nodeName).where('id', '<=', cutoff.id);
  if (running?.id !== null && running?.id !== undefined) {
    prune = prune.where(sql<boolean>`id <> ${running.id}`);
    const carrier = await db
      .selectFrom('config_versions as w')
      .select((eb) => eb.fn.max('w.id').as('id'))
      .where('w.node_name', '=', nodeName)
      .where(
        'w.structural_hash',
        '=',
        db.selectFrom('config_versions').select('structural_hash').where(sql<boolean>`id = ${running.id}`),
      )
      .where(sql<boolean>`(w.structure_chunks is not null or w.structural_parts <> '{}'::jsonb)`)
      .executeTakeFirst();
    if (carrier?.id !== null && carrier?.id !== undefined) prune = prune.where(sql<boolean>`id <> ${carrier.id}`);
  }
  await prune.execute();
}

export interface RenderStateRow {
  readonly tenantId: string;
  readonly goodState: unknown | null;
  readonly goodRevision: number | null;
  readonly goodHash: string | null;
  readonly error: string | null;
}

export async function renderStates(
  db: Db,
  kind: string,
  tenantIds: readonly string[],
): Promise<Map<string, RenderStateRow>> {
  if (tenantIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('tenant_render_states')
    .selectAll()
    .where('kind', '=', kind)
    .where('tenant_id', 'in', [...tenantIds])
    .execute();
  return new Map(
    rows.map((r) => [
      r.tenant_id,
      {
        tenantId: r.tenant_id,
        goodState: r.good_state,
        goodRevision: r.good_revision === null ? null : Number(r.good_revision),
        goodHash: r.good_hash,
        error: r.error,
      },
    ]),
  );
}

/** Rows per statement: a first build of 10,000 tenants is a few statements, a change one. */
const RECORD_BATCH = 1_000;

/** Records the tenants' states as validated for the kind, in as few statements as the batch allows. */
export async function recordGood(
  db: Db,
  kind: string,
  good: readonly { tenantId: string; state: unknown; hash: string }[],
  revision: number,
): Promise<void> {
  for (let i = 0; i < good.length; i += RECORD_BATCH) {
    const rows = good.slice(i, i + RECORD_BATCH).map((g) => ({
      kind,
      tenant_id: g.tenantId,
      good_state: JSON.stringify(g.state),
      good_hash: g.hash,
      good_revision: revision,
      error: null,
      error_revision: null,
    }));
    await db
      .insertInto('tenant_render_states')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['kind', 'tenant_id']).doUpdateSet((eb) => ({
          good_state: eb.ref('excluded.good_state'),
          good_hash: eb.ref('excluded.good_hash'),
          good_revision: eb.ref('excluded.good_revision'),
          error: null,
          error_revision: null,
          updated_at: new Date(),
        })),
      )
      .execute();
  }
}

/** Records the tenants' errors for the kind (their good states stay), in one statement. */
export async function recordErrors(
  db: Db,
  kind: string,
  held: readonly { tenant: string; error: string }[],
  revision: number,
): Promise<void> {
  if (held.length === 0) return;
  await db
    .insertInto('tenant_render_states')
    .values(held.map((h) => ({ kind, tenant_id: h.tenant, error: h.error, error_revision: revision })))
    .onConflict((oc) =>
      oc.columns(['kind', 'tenant_id']).doUpdateSet((eb) => ({
        error: eb.ref('excluded.error'),
        error_revision: eb.ref('excluded.error_revision'),
        updated_at: new Date(),
      })),
    )
    .execute();
}

/** A render state without its (possibly large) good state: enough to decide which state a tenant is served at. */
export type RenderStateSummary = Omit<RenderStateRow, 'goodState'>;

/**
 * Every tenant's render state for a kind, without the good states: read on every runtime pass,
 * so it stays small however large the tenants are (their good states are read by `goodStates`,
 * only for tenants that need them and only once per validated version).
 */
export async function renderStateSummaries(db: Db, kind: string): Promise<Map<string, RenderStateSummary>> {
  const rows = await db
    .selectFrom('tenant_render_states')
    .select(['tenant_id', 'good_revision', 'good_hash', 'error'])
    .where('kind', '=', kind)
    .execute();
  return new Map(
    rows.map((r) => [
      r.tenant_id,
      {
        tenantId: r.tenant_id,
        goodRevision: r.good_revision === null ? null : Number(r.good_revision),
        goodHash: r.good_hash,
        error: r.error,
      },
    ]),
  );
}

/** The good states (and the hash each was recorded with) of these tenants for a kind. */
export async function goodStates(
  db: Db,
  kind: string,
  tenantIds: readonly string[],
): Promise<Map<string, { hash: string; state: unknown }>> {
  if (tenantIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('tenant_render_states')
    .select(['tenant_id', 'good_hash', 'good_state'])
    .where('kind', '=', kind)
    .where('tenant_id', 'in', [...tenantIds])
    .where('good_hash', 'is not', null)
    .execute();
  return new Map(rows.map((r) => [r.tenant_id, { hash: r.good_hash!, state: r.good_state }]));
}
