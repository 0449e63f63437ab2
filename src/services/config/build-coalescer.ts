/**
 * One build per node at a time. A call while a node's build runs may follow a write that build
 * does not include, so it chains one more build after it; concurrent callers share that next
 * build, so a burst of writes still gives two builds, not N.
 */
export class BuildCoalescer<T> {
  private readonly building = new Map<string, Promise<T>>();
  private readonly queued = new Map<string, Promise<T>>();

  constructor(private readonly build: (node: string) => Promise<T>) {}

  /** Whether a build of the node is running in this process. */
  isBuilding(node: string): boolean {
    return this.building.has(node);
  }

  /** The node's next build: one starting now, or the one chained after the build that runs. */
  run(node: string): Promise<T> {
    const running = this.building.get(node);
    if (running) {
      const queued = this.queued.get(node);
      if (queued) return queued;
      const next = running
        .catch(() => undefined)
        .then(() => {
          this.queued.delete(node);
          return this.run(node);
        });
      this.queued.set(node, next);
      return next;
    }
    const started = this.build(node).finally(() => this.building.delete(node));
    this.building.set(node, started);
    return started;
  }
}
