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
/** Rounds of changes a background whole read takes in before it is put in place. */
const CATCH_UP_ROUNDS = 10;

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
 * no tenant (a node or address pool written) is read whole. Every ten minutes the state is also
 * read whole as a safety net, in the background: no build or push waits for it.
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
  /** The safety net's whole read under way (see refreshInBackground). */
  private refreshing: Promise<void> | null = null;

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

  private async read(): Promise<DesiredState> {
    const before = this.held;
    if (before === null) return this.readWhole(null);
    // The safety net's whole read (a second or more at 10,000 tenants) runs beside the reads that
    // callers wait for: a build or a push never waits for it.
    if (this.now() - before.fullAt >= FULL_READ_EVERY_MS) this.refreshInBackground();
    const next = await this.advance(before);
    return next === null ? this.readWhole(before) : this.keep(next);
  }

  /**
   * `from` brought forward by reading only the tenants written since; null when a change named
   * no tenant (a node or address pool written), which only a whole read can follow.
   */
  private async advance(from: Held): Promise<Held | null> {
    this.reads.changes += 1;
    const changes = await loadDesiredStateChanges(this.db, from.state.revision);
    if (changes.global) return null;
    const fresh = this.memo.intern(changes.state.tenants, { get: (id) => tenantOf(from, id) });
    const kept = fresh.length === changes.changed.length && fresh.every((t) => from.position.has(t.tenant.id));
    // The usual write: tenants that were there changed and are still there. They take their
    // places in a copy of the list (no sort, same positions); the placements are copied only if
    // theirs moved. Otherwise (tenants come or go) the list is rebuilt and sorted.
    const written = new Set(changes.changed);
    const tenants = kept ? from.state.tenants.slice() : from.state.tenants.filter((t) => !written.has(t.tenant.id));
    let placements = from.state.placements;
    const place = (id: string, nodes: readonly string[]) => {
      if (sameNodes(nodes, placements.get(id) ?? [])) return;
      if (placements === from.state.placements) placements = new Map(placements);
      const writable = placements as Map<string, readonly string[]>;
      if (nodes.length === 0) writable.delete(id);
      else writable.set(id, nodes);
    };
    for (const t of fresh) written.delete(t.tenant.id);
    for (const gone of written) place(gone, []);
    for (const t of fresh) {
      if (kept) tenants[from.position.get(t.tenant.id)!] = t;
      else tenants.push(t);
      place(t.tenant.id, changes.state.placements.get(t.tenant.id) ?? []);
    }
    if (!kept) tenants.sort((a, b) => (a.tenant.id < b.tenant.id ? -1 : a.tenant.id > b.tenant.id ? 1 : 0));
    const state = { revision: changes.revision, tenants, placements };
    if (kept) carryTenantsOn(from.state, state, fresh);
    return { state, position: kept ? from.position : positions(tenants), fullAt: from.fullAt };
  }

  /**
   * The safety net: a whole read, brought forward by what was written while it ran, then put in
   * place (the next one is due ten minutes after it began). One at a time; a failed one is tried
   * again at the next read.
   */
  private refreshInBackground(): void {
    if (this.refreshing !== null) return;
    const run = async () => {
      const fullAt = this.now();
      this.reads.whole += 1;
      const read = await loadDesiredState(this.db);
      const current = this.held;
      const tenants = this.memo.intern(read.tenants, {
        get: (id) => (current === null ? undefined : tenantOf(current, id)),
      });
      let next: Held | null = { state: { ...read, tenants }, position: positions(tenants), fullAt };
      // Writes committed while it ran, read as any others (each round is one small read).
      for (let round = 0; round < CATCH_UP_ROUNDS && next !== null && next.state.revision < this.revision(); round++)
        next = await this.advance(next);
      // A change that names no tenant came meanwhile: the next read is whole anyway.
      if (next === null) return;
      const held = this.held;
      // Put in place unless the reads kept going faster than it caught up (then tried again in ten minutes).
      this.held = held === null || held.state.revision <= next.state.revision ? next : { ...held, fullAt };
    };
    this.refreshing = run()
      .catch(() => undefined)
      .finally(() => {
        this.refreshing = null;
      });
  }

  /** Resolves once no background whole read is under way (for tests). */
  async refreshed(): Promise<void> {
    await this.refreshing;
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

  /** The revision held, or 0. */
  private revision(): number {
    return this.held?.state.revision ?? 0;
  }

  private keep(next: Held): DesiredState {
    // Reads may overlap (a caller needing a newer revision does not wait for an older read):
    // never step back to an older revision. A read that began before the safety net's whole read
    // landed does not make it due again.
    const held = this.held;
    if (held === null) this.held = next;
    else if (held.state.revision <= next.state.revision)
      this.held = next.fullAt >= held.fullAt ? next : { ...next, fullAt: held.fullAt };
    return next.state;
  }
}

function positions(tenants: readonly TenantState[]): Map<string, number> {
  return new Map(tenants.map((t, i) => [t.tenant.id, i]));
}

function sameNodes(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
