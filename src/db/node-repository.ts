import { sql, type Selectable } from 'kysely';
import { CAPABILITIES, type NodeKind, type NodeReport, type ProxyNode, type RuntimeAddress } from '../domain/node.js';
import type { Db } from './connect.js';
import { iso, isoOrNull } from './column-values.js';
import type { NodeTable } from './schema.js';

/**
 * The fields of a ProxyNode an admin decides (the rest, applied revision and heartbeat, the fleet
 * reports). Absent host, masterAddress and vrrp are null; an absent socketDir takes the column's
 * default (/run/switchyard); a null host is the node's own name.
 */
export type NodeSpec = Pick<
  ProxyNode,
  'name' | 'kind' | 'group' | 'zone' | 'runtimeAddress' | 'capacity' | 'configDir'
> &
  Partial<Pick<ProxyNode, 'masterAddress' | 'socketDir' | 'vrrp'>> & { readonly host?: string | null };

/** A node row with its latest config version's revision and hash (null before the first build). */
type NodeRow = Selectable<NodeTable> & {
  desired_revision?: string | number | null;
  desired_hash?: string | null;
  cert_serial?: string | null;
  cert_not_before?: Date | string | null;
  cert_not_after?: Date | string | null;
  cert_issued_at?: Date | string | null;
};

export function toNode(row: NodeRow): ProxyNode {
  const kind = row.kind as NodeKind;
  const desiredHash = row.desired_hash ?? null;
  return {
    name: row.name,
    kind,
    group: row.node_group,
    zone: row.zone,
    host: row.host ?? row.name,
    runtimeAddress:
      row.runtime_host !== null && row.runtime_port !== null
        ? { host: row.runtime_host, port: row.runtime_port }
        : null,
    masterAddress:
      row.master_host !== null && row.master_port !== null ? { host: row.master_host, port: row.master_port } : null,
    capacity: { vcpu: Number(row.capacity_vcpu), memoryMb: row.capacity_memory_mb },
    configDir: row.config_dir,
    socketDir: row.socket_dir,
    runtimeCertificate:
      row.cert_serial === null || row.cert_serial === undefined
        ? null
        : {
            serial: row.cert_serial,
            notBefore: iso(row.cert_not_before!),
            notAfter: iso(row.cert_not_after!),
            issuedAt: iso(row.cert_issued_at!),
          },
    vrrp:
      row.vrrp_interface === null ||
      row.vrrp_interface === undefined ||
      row.vrrp_address === null ||
      row.vrrp_address === undefined
        ? null
        : { interface: row.vrrp_interface, address: row.vrrp_address, trackPidFile: row.vrrp_track_pid_file ?? null },
    capabilities: CAPABILITIES[kind],
    appliedRevision: row.applied_revision === null ? null : Number(row.applied_revision),
    lastHeartbeatAt: isoOrNull(row.last_heartbeat_at),
    reloadRequest: { generation: row.reload_generation ?? 0, reason: row.reload_reason ?? null },
    placementExcluded:
      row.placement_excluded_reason === null || row.placement_excluded_reason === undefined
        ? null
        : { reason: row.placement_excluded_reason, since: iso(row.placement_excluded_at ?? new Date(0)) },
    status: {
      desiredRevision:
        row.desired_revision === null || row.desired_revision === undefined ? null : Number(row.desired_revision),
      desiredHash,
      appliedHash: row.applied_hash,
      appliedAt: isoOrNull(row.applied_at),
      reloadCount: row.reload_count,
      proxyVersion: row.proxy_version,
      agentVersion: row.agent_version,
      lastError: row.last_error,
      lastErrorAt: isoOrNull(row.last_error_at),
      runtime: {
        revision: row.runtime_revision === null ? null : Number(row.runtime_revision),
        pending: row.runtime_pending,
        error: row.runtime_error,
        errorSince: row.runtime_error === null ? null : isoOrNull(row.runtime_error_since ?? row.runtime_pushed_at),
        pushedAt: isoOrNull(row.runtime_pushed_at),
        commandsSent: Number(row.runtime_commands_sent),
        commandsFailed: Number(row.runtime_commands_failed),
      },
    },
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** Nodes with their latest config version, in one query. */
function nodesWithDesired(db: Db) {
  return db
    .selectFrom('nodes')
    .leftJoin('fleet_certificates as fc', 'fc.node_name', 'nodes.name')
    .selectAll('nodes')
    .select([
      'fc.serial as cert_serial',
      'fc.not_before as cert_not_before',
      'fc.not_after as cert_not_after',
      'fc.issued_at as cert_issued_at',
    ])
    .select((eb) => [
      eb
        .selectFrom('config_versions as cv')
        .whereRef('cv.node_name', '=', 'nodes.name')
        .orderBy('cv.id', 'desc')
        .limit(1)
        .select('cv.revision')
        .as('desired_revision'),
      eb
        .selectFrom('config_versions as cv')
        .whereRef('cv.node_name', '=', 'nodes.name')
        .orderBy('cv.id', 'desc')
        .limit(1)
        .select('cv.content_hash')
        .as('desired_hash'),
    ]);
}

export async function findNode(db: Db, name: string): Promise<ProxyNode | undefined> {
  const row = await nodesWithDesired(db).where('nodes.name', '=', name).executeTakeFirst();
  return row && toNode(row);
}

/** The node that listens on this Runtime API address, if any. */
export async function findNodeByRuntimeAddress(db: Db, a: RuntimeAddress): Promise<ProxyNode | undefined> {
  const row = await db
    .selectFrom('nodes')
    .selectAll()
    .where('runtime_host', '=', a.host)
    .where('runtime_port', '=', a.port)
    .executeTakeFirst();
  return row && toNode(row);
}

/** The node whose VRRP unicast address this is, if any. */
export async function findNodeByVrrpAddress(db: Db, address: string): Promise<ProxyNode | undefined> {
  const row = await db.selectFrom('nodes').selectAll().where('vrrp_address', '=', address).executeTakeFirst();
  return row && toNode(row);
}

/** Nodes sorted by name, after `after` when given. */
export async function listNodes(db: Db, q: { limit: number; after?: string | undefined }): Promise<ProxyNode[]> {
  let query = nodesWithDesired(db).orderBy('nodes.name').limit(q.limit);
  if (q.after !== undefined) query = query.where('nodes.name', '>', q.after);
  return (await query.execute()).map(toNode);
}

/** Every node, by name: read a page at a time, so each query stays bounded however large the fleet. */
export async function allNodes(db: Db): Promise<ProxyNode[]> {
  const out: ProxyNode[] = [];
  for (;;) {
    const page = await listNodes(db, { limit: 500, after: out.at(-1)?.name });
    out.push(...page);
    if (page.length < 500) return out;
  }
}

export async function nodeExists(db: Db, name: string): Promise<boolean> {
  const row = await db.selectFrom('nodes').select('name').where('name', '=', name).executeTakeFirst();
  return row !== undefined;
}

export async function insertNode(db: Db, n: NodeSpec, revision: number): Promise<ProxyNode> {
  const row = await db
    .insertInto('nodes')
    .values({ name: n.name, kind: n.kind, ...specColumns(n), revision })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toNode(row);
}

/** Writes the admin-owned fields (the service has merged the patch); the kind is fixed for a node's life. */
export async function updateNode(db: Db, n: NodeSpec, revision: number): Promise<ProxyNode> {
  const row = await db
    .updateTable('nodes')
    .set({ ...specColumns(n), revision, updated_at: new Date() })
    .where('name', '=', n.name)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toNode(row);
}

function specColumns(n: NodeSpec) {
  return {
    node_group: n.group,
    zone: n.zone,
    // Stored only when it names another machine than the node's own name.
    host: n.host === undefined || n.host === null || n.host === n.name ? null : n.host,
    runtime_host: n.runtimeAddress?.host ?? null,
    runtime_port: n.runtimeAddress?.port ?? null,
    master_host: n.masterAddress?.host ?? null,
    master_port: n.masterAddress?.port ?? null,
    capacity_vcpu: n.capacity.vcpu,
    capacity_memory_mb: n.capacity.memoryMb,
    config_dir: n.configDir,
    ...(n.socketDir !== undefined && { socket_dir: n.socketDir }),
    vrrp_interface: n.vrrp?.interface ?? null,
    vrrp_address: n.vrrp?.address ?? null,
    vrrp_track_pid_file: n.vrrp?.trackPidFile ?? null,
  };
}

/** Deletes the node; its agent tokens go with it (ON DELETE CASCADE). */
export async function deleteNode(db: Db, name: string): Promise<void> {
  await db.deleteFrom('nodes').where('name', '=', name).execute();
}

/** Records an agent's report: observed state, so no revision and no audit event. */
export async function recordReport(db: Db, name: string, r: NodeReport, at: Date): Promise<void> {
  const versions = {
    ...(r.proxyVersion !== undefined && { proxy_version: r.proxyVersion }),
    ...(r.agentVersion !== undefined && { agent_version: r.agentVersion }),
  };
  if (r.event === 'heartbeat') {
    await db
      .updateTable('nodes')
      .set({ last_heartbeat_at: at, ...versions })
      .where('name', '=', name)
      .execute();
  } else if (r.event === 'applied') {
    await db
      .updateTable('nodes')
      .set((eb) => ({
        last_heartbeat_at: at,
        applied_hash: r.contentHash!,
        applied_revision: r.revision!,
        applied_at: at,
        last_error: null,
        last_error_at: null,
        reload_count: r.reloaded ? eb('reload_count', '+', 1) : eb.ref('reload_count'),
        ...versions,
      }))
      .where('name', '=', name)
      .execute();
  } else {
    await db
      .updateTable('nodes')
      .set({ last_heartbeat_at: at, last_error: r.error!, last_error_at: at, ...versions })
      .where('name', '=', name)
      .execute();
  }
}

/** Records the outcome of a Runtime API push to the node. */
export async function recordRuntimePush(
  db: Db,
  name: string,
  p: { revision: number | null; pending: number; error: string | null; sent: number; failed: number; at: Date },
): Promise<void> {
  await db
    .updateTable('nodes')
    .set(() => ({
      ...(p.revision !== null && { runtime_revision: p.revision }),
      runtime_pending: p.pending,
      runtime_error: p.error,
      runtime_error_since: p.error === null ? null : sql<Date>`coalesce(runtime_error_since, ${p.at})`,
      runtime_pushed_at: p.at,
      runtime_commands_sent: sql<string>`runtime_commands_sent + ${p.sent}`,
      runtime_commands_failed: sql<string>`runtime_commands_failed + ${p.failed}`,
    }))
    .where('name', '=', name)
    .execute();
}

/** Asks for one more reload of the node (see ProxyNode.reloadRequest); returns the new generation. */
export async function requestReload(db: Db, name: string, reason: string): Promise<number> {
  const row = await db
    .updateTable('nodes')
    .set((eb) => ({ reload_generation: eb('reload_generation', '+', 1), reload_reason: reason }))
    .where('name', '=', name)
    .returning('reload_generation')
    .executeTakeFirst();
  return row?.reload_generation ?? 0;
}
