import type { TenantState } from '../../db/desired-state-repository.js';

/** Served states remembered per node (besides the one it runs), for holding a tenant at what the node runs. */
const SERVED_VERSIONS_KEPT = 8;

/**
 * Per node, the tenant states of its last stored versions by content hash (and the one it runs):
 * what a node that applied a version runs, for holding a tenant there at that state.
 */
export class ServedHistory {
  private readonly byNode = new Map<string, { readonly hash: string; readonly states: readonly TenantState[] }[]>();

  /** The states the node's version with these contents served, when it is remembered. */
  servedAt(node: string, contentHash: string): readonly TenantState[] | undefined {
    return this.byNode.get(node)?.find((e) => e.hash === contentHash)?.states;
  }

  /** Keeps the served states of a node's newest stored versions, and of the one it runs, by content hash. */
  remember(node: string, hash: string, states: readonly TenantState[], appliedHash: string | null): void {
    const history = (this.byNode.get(node) ?? []).filter((e) => e.hash !== hash);
    history.push({ hash, states });
    // Only references to states the memo holds anyway: a few versions cost a few arrays of pointers.
    while (history.length > SERVED_VERSIONS_KEPT) {
      const drop = history.findIndex((e) => e.hash !== appliedHash);
      history.splice(Math.max(0, drop), 1);
    }
    this.byNode.set(node, history);
  }
}
