/**
 * A read-through cache for single-resource reads, emptied by every committed write.
 *
 * Correctness rests on three rules: every commit on this replica empties it before the writer
 * answers (so a client always reads its own writes here); every commit on another replica empties
 * it when its NOTIFY arrives (milliseconds); and while the notification stream is down the cache
 * is bypassed, because a missed notification would otherwise leave a stale entry forever.
 * A read that overlaps an invalidation is answered but not stored.
 */
export class ReadCache {
  private readonly entries = new Map<string, unknown>();
  private generation = 0;
  private enabled: boolean;

  constructor(
    private readonly maxEntries = 10_000,
    enabled = true,
  ) {
    this.enabled = enabled;
  }

  async get<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (!this.enabled) return load();
    if (this.entries.has(key)) return this.entries.get(key) as T;
    const generation = this.generation;
    const value = await load();
    if (this.enabled && generation === this.generation && value !== undefined) {
      if (this.entries.size >= this.maxEntries) this.entries.clear();
      this.entries.set(key, value);
    }
    return value;
  }

  /** Something committed: nothing cached may be trusted any more. */
  invalidate(): void {
    this.generation++;
    this.entries.clear();
  }

  /** Bypass the cache (notification stream down) or use it again (stream back). */
  setEnabled(enabled: boolean): void {
    this.invalidate();
    this.enabled = enabled;
  }

  get size(): number {
    return this.entries.size;
  }
}
