import type { Db } from '../../db/connect.js';
import {
  carryTenantsOn,
  loadDesiredState,
  loadDesiredStateChanges,
  type DesiredState,
  type TenantState,
} from '../../db/desired-state-repository.js';
import type { TenantMemo } from './tenant-memo.js';

/** How long an incrementally kept state may go without a whole read (a safety net, not a need). */
const FULL_READ_EVERY_MS = 10 * 60_000;

interface Held {
  readonly state: DesiredState;
  /** Each tenant's index in `state.tenants` (sorted by id). */
  readonly position: ReadonlyMap<string, number>;
  readonly fullAt: number;
}

/** The tenant of `held` with this id, if it has one. */
const tenantOf = (held: Held, id: string): TenantState | undefined => {
  const at = held.position.get(id);
  return at === undefined ? undefined : held.state.tenants[at];
};

/**
 * The desired state at the newest revision, kept in memory and brought forward by reading only
 * the tenants written since (their audit events say which). A write to one tenant among 10,000
 * then costs one tenant's read, parse and hash instead of the whole state's. A change that names
 * no tenant (a node or address pool written) is read whole, as is the state every ten minutes.
 *
 * Unchanged tenants keep their objects from one revision to the next (`TenantMemo.intern`), so
 * everything memoized on them (hashes, structures, snapshots, rendered fragments) carries over.
 * Callers asking at once share one read.
 */
export class DesiredStateCache {
  private held: Held | null = null;
  /** Reads made so far, whole and incremental (what the tests and the scale benchmark check). */
  readonly reads = { whole: 0, changes: 0 };
  private pending: { atLeast: number; state: Promise<DesiredState> } | null = null;

  constructor(
    private readonly db: Db,
    private readonly memo: TenantMemo,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The state at `atLeast` or newer (a revision the change feed announced), else at the current
   * revision, which `currentRevision` reads.
   */
  async get(currentRevision: () => Promise<number>, atLeast?: number): Promise<DesiredState> {
    const held = this.held;
    if (held && atLeast !== undefined && held.state.revision >= atLeast) return held.state;
    const pending = this.pending;
    if (pending && atLeast !== undefined && pending.atLeast >= atLeast) return pending.state;
    const revision = atLeast ?? (await currentRevision());
    if (this.held && this.held.state.revision >= revision) return this.held.state;
    if (this.pending && this.pending.atLeast >= revision) return this.pending.state;
    const entry = { atLeast: revision, state: this.read() };
    this.pending = entry;
    entry.state.then(
      (s) => {
        entry.atLeast = Math.max(entry.atLeast, s.revision);
        if (this.pending === entry) this.pending = null;
      },
      () => {
        if (this.pending === entry) this.pending = null;
      },
    );
    return entry.state;
  }

  /** Forgets the kept state: the next read is whole (the database may have been replaced under us). */
  reset(): void {
    this.held = null;
  }

  private async read(): Promise<DesiredState> {
    const before = this.held;
    if (before === null || this.now() - before.fullAt >= FULL_READ_EVERY_MS) return this.readWhole(before);
    this.reads.changes += 1;
    const changes = await loadDesiredStateChanges(this.db, before.state.revision);
    if (changes.global) return this.readWhole(before);
    const fresh = this.memo.intern(changes.state.tenants, { get: (id) => tenantOf(before, id) });
    const kept = fresh.length === changes.changed.length && fresh.every((t) => before.position.has(t.tenant.id));
    // The usual write: tenants that were there changed and are still there. They take their
    // places in a copy of the list (no sort, same positions); the placements are copied only if
    // theirs moved. Otherwise (tenants come or go) the list is rebuilt and sorted.
    const written = new Set(changes.changed);
    const tenants = kept ? before.state.tenants.slice() : before.state.tenants.filter((t) => !written.has(t.tenant.id));
    let placements = before.state.placements;
    const place = (id: string, nodes: readonly string[]) => {
      if (sameNodes(nodes, placements.get(id) ?? [])) return;
      if (placements === before.state.placements) placements = new Map(placements);
      const writable = placements as Map<string, readonly string[]>;
      if (nodes.length === 0) writable.delete(id);
      else writable.set(id, nodes);
    };
    for (const t of fresh) written.delete(t.tenant.id);
    for (const gone of written) place(gone, []);
    for (const t of fresh) {
      if (kept) tenants[before.position.get(t.tenant.id)!] = t;
      else tenants.push(t);
      place(t.tenant.id, changes.state.placements.get(t.tenant.id) ?? []);
    }
    if (!kept) tenants.sort((a, b) => (a.tenant.id < b.tenant.id ? -1 : a.tenant.id > b.tenant.id ? 1 : 0));
    const state = { revision: changes.revision, tenants, placements };
    if (kept) carryTenantsOn(before.state, state, fresh);
    return this.keep({ state, position: kept ? before.position : positions(tenants), fullAt: before.fullAt });
  }

  private async readWhole(before: Held | null): Promise<DesiredState> {
    const fullAt = this.now();
    this.reads.whole += 1;
    const read = await loadDesiredState(this.db);
    const tenants = this.memo.intern(read.tenants, {
      get: (id) => (before === null ? undefined : tenantOf(before, id)),
    });
    return this.keep({ state: { ...read, tenants }, position: positions(tenants), fullAt });
  }

  private keep(next: Held): DesiredState {
    // Reads may overlap (a caller needing a newer revision does not wait for an older read):
    // never step back to an older revision.
    if (this.held === null || this.held.state.revision <= next.state.revision) this.held = next;
    return next.state;
  }
}

function positions(tenants: readonly TenantState[]): Map<string, number> {
  return new Map(tenants.map((t, i) => [t.tenant.id, i]));
}

function sameNodes(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
