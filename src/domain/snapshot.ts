import type { CaBundleMaterial } from './ca-bundle.js';
import type { RuntimeTlsMaterial } from './runtime-tls.js';
import type { MemberSpec } from './member.js';
import type { NodeKind } from './node.js';
import type { Pool } from './pool.js';
import type { Route } from './route.js';
import type { Resources } from './tenant.js';
import type { Vip } from './vip.js';

/**
 * Everything one proxy node must serve, as plain data: the input of the renderers and of change
 * planning. Built from the database by services; never holds anything a client sent unvalidated.
 * Arrays are sorted by name so equal state always renders to equal bytes.
 */
export interface NodeSnapshot {
  readonly revision: number;
  readonly node: NodeSettings;
  readonly tenants: readonly TenantSnapshot[];
  /**
   * A runtime snapshot's tenants whose part is still being validated (see
   * NodeConfigPlanner.runtimeSnapshot): their current state, and their last validated one when it
   * has one. The node may already run either (its agent can load a build this process has not
   * heard of yet), so runtime pushes leave what it holds for them alone; the pass after the build
   * plans them. Builds' snapshots have none.
   */
  readonly unsettled?: readonly TenantSnapshot[];
}

export interface NodeSettings {
  readonly name: string;
  readonly kind: NodeKind;
  /** HAProxy Runtime API listener (mTLS, forwarded to the local admin socket), or null for none. */
  readonly runtimeAddress: { readonly host: string; readonly port: number } | null;
  /** HAProxy master CLI listener (mTLS, forwarded to `<socketDir>/master.sock`), or null; absent: none. */
  readonly masterAddress?: { readonly host: string; readonly port: number } | null;
  /** Local directory of HAProxy's unix sockets (admin.sock, master.sock); absent: /run/switchyard. */
  readonly socketDir?: string;
  /**
   * The node's Runtime API certificate, key and trusted CAs. Absent or null: no listener is
   * rendered for the Runtime API or master CLI at all (never an unauthenticated one).
   */
  readonly runtimeTls?: RuntimeTlsMaterial | null;
  readonly capacity: Resources;
  /** Absolute directory on the node where the agent places the rendered files (maps, certs). */
  readonly configDir: string;
}

export interface TenantSnapshot {
  readonly id: string;
  readonly vips: readonly VipSnapshot[];
  readonly pools: readonly PoolSnapshot[];
  readonly certificates: readonly CertificateMaterial[];
  /**
   * CA bundles that verify TLS members, sorted by name. Optional: a tenant's last good state
   * stored before they existed has none, and its pools no TLS.
   */
  readonly caBundles?: readonly CaBundleMaterial[];
  readonly allocation: TenantAllocation;
}

export interface VipSnapshot extends Vip {
  /** Sorted by priority, then name. */
  readonly routes: readonly Route[];
}

export interface PoolSnapshot extends Pool {
  readonly members: readonly MemberSpec[];
}

/** Decrypted certificate material, only ever held in memory while rendering. */
export interface CertificateMaterial {
  readonly name: string;
  readonly chainPem: string;
  readonly keyPem: string;
  readonly sans: readonly string[];
}

/** The tenant's share of this node, enforced on the proxy. */
export interface TenantAllocation {
  /**
   * Concurrent connections for the whole tenant on this node (all its VIPs); a new connection
   * beyond it is refused. Lives in the caps map, so it changes at runtime.
   */
  readonly maxConnections: number;
  /** Admitted requests per second for the whole tenant on this node before 429 (HTTP VIPs); in the caps map too. */
  readonly requestsPerSecond: number;
  /**
   * The tenant's connection limit on this node: each of its frontends' `maxconn`, a ceiling that
   * moves only when the limit does (the cap above moves with demand, below it). Absent: the cap.
   */
  readonly connectionLimit?: number;
}

/** A rendered config: file name (relative to the node's configDir) → content. */
export type RenderedFiles = Readonly<Record<string, string>>;

/**
 * Files as the pieces that join into them: per-tenant parts stay separate strings, so a build
 * stores and hashes only the parts that changed (an unchanged tenant's part is the same string).
 */
export type SegmentedFiles = Readonly<Record<string, readonly string[]>>;

/** The files a segmented render joins into. */
export function joinSegments(files: SegmentedFiles): RenderedFiles {
  return Object.fromEntries(Object.entries(files).map(([name, parts]) => [name, parts.join('')]));
}
