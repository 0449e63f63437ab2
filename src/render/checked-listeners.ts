/**
 * The fragment lists whose listeners were last found free of conflicts, per key (a config
 * directory, and on HAProxy the node's own listeners), a few, the most recently checked kept. A
 * build that changed one tenant's members has the same listeners: comparing fragment by fragment
 * (by reference, then by listeners where the fragment is new) is much cheaper than building the
 * map of 10,000 listeners again.
 */
export class CheckedListeners<F extends { readonly tenant: string }> {
  private readonly lists = new Map<string, readonly F[]>();

  constructor(
    private readonly kept: number,
    /** Whether two fragments of one tenant listen on the same endpoints, for the same names. */
    private readonly sameListeners: (a: F, b: F) => boolean,
  ) {}

  /** Runs `checkNow` (which throws on a conflict) unless these fragments' listeners were checked last for `key`. */
  check(key: string, fragments: readonly F[], checkNow: (fragments: readonly F[]) => void): void {
    const last = this.lists.get(key);
    if (last !== undefined && this.same(last, fragments)) return;
    checkNow(fragments);
    this.lists.delete(key);
    this.lists.set(key, fragments);
    if (this.lists.size > this.kept) this.lists.delete(this.lists.keys().next().value!);
  }

  private same(before: readonly F[], now: readonly F[]): boolean {
    if (before.length !== now.length) return false;
    for (let i = 0; i < now.length; i++) {
      const a = before[i]!;
      const b = now[i]!;
      if (a !== b && (a.tenant !== b.tenant || !this.sameListeners(a, b))) return false;
    }
    return true;
  }
}
