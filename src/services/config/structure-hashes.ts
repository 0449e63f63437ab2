import { createHash } from 'node:crypto';
import { RELOAD_PART, tenantStructuralParts } from '../../domain/structural.js';
import { LUA_MODULE_DIGEST } from '../../render/nginx-lua-files.js';
import type { NodeKind } from '../../domain/node.js';
import { AlignedMemo } from '../../util/aligned.js';
import type { NodeSnapshot, TenantSnapshot } from '../../domain/snapshot.js';

/** Hex characters kept of each part's SHA-256. */
const PART_HASH_CHARS = 16;

interface TenantStructure {
  /** SHA-256 over the tenant's labelled part hashes: what the node's structural hash is made of. */
  readonly digest: string;
  /** The tenant's entry in the node's list: its id and digest. */
  readonly listed: string;
  readonly parts: readonly (readonly [label: string, hash: string])[];
}

/**
 * Per tenant snapshot, its structure's hashes. Snapshots are immutable and unchanged tenants keep
 * their snapshot objects from one build to the next, so a build hashes only the changed tenants'
 * structures: the node's hash is then a hash of hashes, not of the whole fleet's JSON.
 */
const memo: Record<NodeKind, WeakMap<TenantSnapshot, TenantStructure>> = {
  haproxy: new WeakMap(),
  nginx: new WeakMap(),
};

function tenantStructure(t: TenantSnapshot, kind: NodeKind): TenantStructure {
  let s = memo[kind].get(t);
  if (s === undefined) {
    // A part's hash only tells two versions of it apart (the node's structural hash is the full
    // SHA-256): 64 bits do that, and keep the parts a version stores (20,000 at 10,000 tenants) small.
    const parts = Object.entries(tenantStructuralParts(t, kind)).map(
      ([label, value]) => [label, sha256(JSON.stringify(value)).slice(0, PART_HASH_CHARS)] as const,
    );
    const digest = sha256(JSON.stringify(parts));
    s = { digest, listed: `${t.id}\0${digest}`, parts };
    memo[kind].set(t, s);
  }
  return s;
}

/**
 * Per node, its last list of tenant structures, which the next is lined up with (`mapAligned`):
 * unchanged tenants cost a pointer comparison, not a WeakMap lookup. A few nodes' lists, the most
 * recently hashed kept (the control plane hashes for its own nodes, and dry runs for them).
 */
const lineups = new Map<string, Lineup>();
const LINEUPS_KEPT = 64;

interface Lineup {
  readonly structures: AlignedMemo<TenantSnapshot, TenantStructure>;
  /** The node's last hash and what it was made of: a build that changed no tenant's structure reuses it. */
  last?: { readonly node: string; readonly reloadGeneration: number; readonly listed: string; readonly hash: string };
}

function lineupOf(node: string, kind: NodeKind): Lineup {
  const key = `${kind}\0${node}`;
  let lineup = lineups.get(key);
  if (lineup === undefined) lineup = { structures: new AlignedMemo((t) => tenantStructure(t, kind)) };
  lineups.delete(key);
  lineups.set(key, lineup);
  if (lineups.size > LINEUPS_KEPT) lineups.delete(lineups.keys().next().value!);
  return lineup;
}

/**
 * The structural hash of a HAProxy node with a Runtime API (equal for two snapshots exactly when
 * the Runtime API turns one into the other: see domain/structural.ts) and its labelled parts, which
 * say what a reload is for. A reload generation above 0 joins both, so each new one means a reload.
 * The parts (two or more per tenant) are assembled only when asked for: a build whose structure did
 * not change stores none (see ConfigService.buildNow).
 */
export function structureHashes(
  snapshot: NodeSnapshot,
  reloadGeneration: number,
): { structuralHash: string; structuralParts: () => Record<string, string> } {
  const node = JSON.stringify(nodeStructure(snapshot.node));
  const tenants = inOrder(snapshot.tenants);
  const kind = snapshot.node.kind;
  const lineup = lineupOf(snapshot.node.name, kind);
  const mapped = lineup.structures.map(tenants);
  const structures = mapped.out;
  const last = lineup.last;
  // A weight or member change gives the tenant new objects with the structure it had: the list of
  // the node's structures is then the last one, and so (with the same node) is the hash.
  const sameList =
    last !== undefined &&
    mapped.gone.length === mapped.fresh.length &&
    mapped.fresh.every((i, k) => structures[i]!.listed === mapped.goneOut[k]!.listed);
  // One string, one hash update: 10,000 tenants' small updates cost a build milliseconds.
  const listed = sameList ? last.listed : structures.map((s) => s.listed).join('\0');
  let structuralHash: string;
  if (sameList && last.node === node && last.reloadGeneration === reloadGeneration) structuralHash = last.hash;
  else {
    const h = createHash('sha256').update(node).update('\0').update(listed);
    if (reloadGeneration > 0) h.update(`\0reload generation ${reloadGeneration}`);
    structuralHash = h.digest('hex');
  }
  lineup.last = { node, reloadGeneration, listed, hash: structuralHash };
  const structuralParts = () => {
    const parts: Record<string, string> = { node: sha256(node) };
    for (const s of structures) for (const [label, hash] of s.parts) parts[label] = hash;
    if (reloadGeneration > 0) parts[RELOAD_PART] = sha256(JSON.stringify(reloadGeneration));
    return parts;
  };
  return { structuralHash, structuralParts };
}

/**
 * The node's settings as far as a reload is concerned: its Runtime API certificate and key are
 * swapped in live (`set ssl cert`, planned from the runtime view), so a renewal needs none; which
 * CAs it trusts is read at start only, so a CA change does.
 */
function nodeStructure(node: NodeSnapshot['node']): unknown {
  const tls = node.runtimeTls;
  // NGINX reads the runtime channel's certificate only when it starts: a new one is a reload there.
  if (node.kind === 'nginx') return { ...node, luaModule: LUA_MODULE_DIGEST };
  return tls === undefined || tls === null ? node : { ...node, runtimeTls: { caBundlePem: tls.caBundlePem } };
}

/** The tenants by id; snapshots usually come sorted already, and are then not copied. */
function inOrder(tenants: readonly TenantSnapshot[]): readonly TenantSnapshot[] {
  for (let i = 1; i < tenants.length; i++) {
    if (tenants[i - 1]!.id >= tenants[i]!.id)
      return [...tenants].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
  return tenants;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
