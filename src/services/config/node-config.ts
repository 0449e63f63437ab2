import type { NodeKind } from '../../domain/node.js';
import type { NodeSnapshot, RenderedFiles } from '../../domain/snapshot.js';
import type { HeldTenant } from '../../db/config-repository.js';

/** What a node is told to run. */
export interface NodeConfig {
  readonly node: string;
  readonly kind: NodeKind;
  /** The desired-state revision these files reflect. */
  readonly revision: number;
  /** SHA-256 over file names and their segments' keyed digests (ConfigStore.contentHash): the ETag agents poll with. */
  readonly contentHash: string;
  /**
   * Changes only when the new files need a proxy reload; otherwise the Runtime API has already made
   * the change live and the agent just writes the files. On NGINX nodes, the hash of the proxy's
   * files (keepalived.conf left out: a VRRP change reloads keepalived, not the proxy).
   */
  readonly structuralHash: string;
  readonly files: RenderedFiles;
  /** Tenants served at an older state (or left out) because their current state failed validation. */
  readonly heldTenants: readonly HeldTenant[];
  readonly createdAt: string;
}

/** A stored build and the snapshot it was rendered from (private keys included: never answered to a client). */
export interface ServedConfig {
  readonly config: NodeConfig;
  readonly snapshot: NodeSnapshot;
  /** When the next tenant held on the node for a listener it could not bind is tried again (ms since the epoch), or null. */
  readonly retryHeldAt?: number | null;
}
