import type { Db } from '../../db/connect.js';
import { renderStateSummaries, type RenderStateSummary } from '../../db/config-repository.js';
import type { NodeKind } from '../../domain/node.js';

/** A whole read now and then catches what another replica recorded (see the class comment). */
const REREAD_EVERY_MS = 60_000;

/**
 * Each tenant's render state per node kind (its last validated hash and error), without the
 * good states: read whole once, then kept current by the builds of this process, which record
 * every change after they commit. Builds and runtime passes read it on every change, so reading
 * 10,000 rows each time would make a one-tenant write cost the whole fleet's.
 *
 * Another replica's builds (an agent's long poll answered there) are seen at the next whole read.
 * Until then this copy is behind, never wrong: a good hash says that exact state validated for
 * the kind, which stays true, so a missing newer one only means validating that tenant again.
 */
interface Entry {
  readonly at: number;
  readonly rows: Promise<RenderStates>;
  /** `rows` once read: what `recorded` builds on. */
  map?: RenderStates;
  /** A whole read to replace it is under way. */
  refreshing?: boolean;
}

/** A kind's render states by tenant: what builds and runtime passes look tenants up in. */
export type RenderStates = Pick<ReadonlyMap<string, RenderStateSummary>, 'get'>;

/** Entries recorded on top of a whole read before they are folded into a new copy of it. */
const MAX_LAYERED = 1024;

/**
 * The states read whole, and those recorded since on top: recording one build's few tenants
 * copies the small top layer, not 10,000 entries. Never changes once made.
 */
class LayeredStates implements RenderStates {
  constructor(
    readonly base: ReadonlyMap<string, RenderStateSummary>,
    readonly top: ReadonlyMap<string, RenderStateSummary>,
  ) {}

  get(tenant: string): RenderStateSummary | undefined {
    return this.top.get(tenant) ?? this.base.get(tenant);
  }

  /** With these entries set (a new object). */
  with(entries: readonly RenderStateSummary[]): LayeredStates {
    const top = new Map(this.top);
    for (const e of entries) top.set(e.tenantId, e);
    if (top.size <= MAX_LAYERED) return new LayeredStates(this.base, top);
    const base = new Map(this.base);
    for (const [tenant, e] of top) base.set(tenant, e);
    return new LayeredStates(base, new Map());
  }
}

export class RenderStateCache {
  private readonly kinds = new Map<NodeKind, Entry>();

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** The kind's render states: a map that never changes once answered (a caller may read it across awaits). */
  summaries(kind: NodeKind): Promise<RenderStates> {
    const held = this.kinds.get(kind);
    if (held !== undefined && this.now() - held.at < REREAD_EVERY_MS) return held.rows;
    if (held?.map !== undefined) {
      // Due for a whole read: it runs in the background and the copy held is answered meanwhile
      // (behind, never wrong), so no build waits for 10,000 rows once a minute.
      this.refresh(kind, held);
      return held.rows;
    }
    const rows = renderStateSummaries(this.db, kind).then((read) => new LayeredStates(read, new Map()));
    const entry: Entry = { at: this.now(), rows };
    this.kinds.set(kind, entry);
    rows.then(
      (map) => (entry.map = map),
      () => {
        if (this.kinds.get(kind) === entry) this.kinds.delete(kind);
      },
    );
    return rows;
  }

  /** Reads the kind's render states whole, then puts them in place with what was recorded here on top. */
  private refresh(kind: NodeKind, held: Entry): void {
    if (held.refreshing === true) return;
    held.refreshing = true;
    const at = this.now();
    renderStateSummaries(this.db, kind).then(
      (read) => {
        const current = this.kinds.get(kind);
        if (current?.map === undefined) return;
        // What this process recorded stays on top: each entry says a state validated, which stays true.
        const map = new LayeredStates(read, (current.map as LayeredStates).top);
        this.kinds.set(kind, { at, rows: Promise.resolve(map), map });
      },
      () => {
        held.refreshing = false; // the next call tries again
      },
    );
  }

  /** What a committed build recorded: tenants validated at a new state, and tenants held with an error. */
  async recorded(
    kind: NodeKind,
    good: readonly { readonly tenant: string; readonly hash: string; readonly revision: number }[],
    held: readonly { readonly tenant: string; readonly error: string }[],
  ): Promise<void> {
    if (good.length === 0 && held.length === 0) return;
    await this.summaries(kind).catch(() => null);
    // From here on synchronous: copy the newest map, change the copy, publish it. Readers holding
    // the old map keep a consistent one. A whole read still in flight may miss this build: the
    // copy is then behind, which costs a validation, never a wrong answer (see the class comment).
    const entry = this.kinds.get(kind);
    if (entry?.map === undefined) return;
    const map = entry.map as LayeredStates;
    const entries: RenderStateSummary[] = good.map((g) => ({
      tenantId: g.tenant,
      goodHash: g.hash,
      goodRevision: g.revision,
      error: null,
    }));
    const recordedGood = new Map(entries.map((e) => [e.tenantId, e]));
    for (const h of held) {
      const before = recordedGood.get(h.tenant) ?? map.get(h.tenant);
      entries.push({
        tenantId: h.tenant,
        goodHash: before?.goodHash ?? null,
        goodRevision: before?.goodRevision ?? null,
        error: h.error,
      });
    }
    const next = map.with(entries);
    this.kinds.set(kind, { at: entry.at, rows: Promise.resolve(next), map: next });
  }

  /** Forgets everything: the next read is whole. */
  reset(): void {
    this.kinds.clear();
  }
}
