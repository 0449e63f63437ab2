import type { TenantSnapshot } from '../domain/snapshot.js';
import { AlignedMemo } from '../util/aligned.js';

/** Config directories whose last list is kept, the most recently rendered first to stay. */
const DIRECTORIES_KEPT = 16;
/** Shorter lists (a validation of a few changed tenants) are rendered without taking a node's place. */
const MIN_LISTED = 64;

/**
 * A renderer's fragments for a whole node, per config directory (a node's, a preview's): each
 * render there is lined up with the last one (`mapAligned`), so its unchanged tenants cost a
 * pointer comparison each instead of two cache lookups in `render`.
 */
export class FragmentLists<F> {
  private readonly lists = new Map<string, AlignedMemo<TenantSnapshot, F>>();

  constructor(private readonly render: (tenant: TenantSnapshot, configDir: string) => F) {}

  /** The fragments of `tenants` (sorted by id) rendered for `configDir`. */
  of(tenants: readonly TenantSnapshot[], configDir: string): readonly F[] {
    if (tenants.length < MIN_LISTED) return tenants.map((t) => this.render(t, configDir));
    let list = this.lists.get(configDir);
    if (list === undefined) list = new AlignedMemo((tenant) => this.render(tenant, configDir));
    this.lists.delete(configDir);
    this.lists.set(configDir, list);
    if (this.lists.size > DIRECTORIES_KEPT) this.lists.delete(this.lists.keys().next().value!);
    return list.map(tenants).out;
  }
}
