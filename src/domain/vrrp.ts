import { z } from 'zod';
import { canonicalIp } from './ip.js';
import { NGINX_FILES } from './config-files.js';
import type { NodeKind } from './node.js';

/**
 * VIP ownership with VRRP (keepalived): which node holds each VIP address, and who takes it over.
 * Pure rules; the keepalived file is rendered from what `planVrrpInstances` answers.
 */

/** A Linux interface name (at most 15 characters, IFNAMSIZ - 1), in a set that stays one keepalived word. */
export const interfaceName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/,
    'must be an interface name: 1 to 15 letters, digits, _ . or -, not starting with a symbol',
  );

/** The unicast source: VRRP adverts to peers go from it, and only peers' addresses are heard. */
const ipv4 = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    const canonical = canonicalIp(text);
    if (canonical === null || canonical.includes(':')) {
      ctx.addIssue({ code: 'custom', message: 'must be an IPv4 address literal (VRRP version 2 carries IPv4 only)' });
      return z.NEVER;
    }
    return canonical;
  });

/** An absolute file on the node, printed into a shell command of the track script: a strict character set. */
const pidFile = z
  .string()
  .max(200)
  .regex(/^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/, 'must be an absolute file path of letters, digits and . _ / -')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ..');

export const vrrpSettingsSchema = z.strictObject({
  interface: interfaceName,
  address: ipv4,
  /** Null: the kind's default (`defaultTrackPidFile`). */
  trackPidFile: pidFile.nullable().default(null),
});
export type VrrpSettings = z.output<typeof vrrpSettingsSchema>;

/**
 * Where the proxy's master writes its pid when nothing else is said: Debian's haproxy unit runs
 * `haproxy -Ws -p /run/haproxy.pid`; the rendered nginx.conf puts its pid file in configDir.
 */
export function defaultTrackPidFile(kind: NodeKind, configDir: string): string {
  return kind === 'haproxy' ? '/run/haproxy.pid' : `${configDir}/${NGINX_FILES.pid}`;
}

/** The VRRP router ids a node group can use (the VRRP field is 8 bits; 0 is reserved). */
export const VRID_MIN = 1;
export const VRID_MAX = 255;

/**
 * Priorities by rank in placement order: the first placed node is the primary. High values keep
 * the backups' skew time ((256 - priority) / 256 s) short, so a lost primary is replaced about
 * 3.2 s after its last advert instead of 3.6 s. 255 is reserved for an address's owner.
 */
export const PRIMARY_PRIORITY = 250;
export const FIRST_BACKUP_PRIORITY = 200;
const BACKUP_STEP = 10;

export function vrrpPriority(rank: number): number {
  if (rank === 0) return PRIMARY_PRIORITY;
  return Math.max(1, FIRST_BACKUP_PRIORITY - BACKUP_STEP * (rank - 1));
}

/** A VIP address's VRRP router as stored, with the VRRP nodes that serve it in placement order. */
export interface VrrpRouter {
  readonly address: string;
  readonly vrid: number;
  /** keepalived's `auth_pass` (8 characters: VRRPv2 PASS authentication uses no more). */
  readonly authPass: string;
  /** Oldest placement first; each with its unicast address. */
  readonly nodes: readonly { readonly name: string; readonly address: string }[];
}

/** One `vrrp_instance` of a node's keepalived file. */
export interface VrrpInstance {
  readonly name: string;
  readonly vrid: number;
  readonly priority: number;
  /**
   * The other nodes' unicast addresses, sorted. A node alone on an address is its own peer:
   * keepalived stays in unicast mode (no multicast adverts on the segment) and still holds the
   * address only while the proxy lives.
   */
  readonly peers: readonly string[];
  /** No other VRRP node serves the address: nothing takes it over. */
  readonly alone: boolean;
  readonly authPass: string;
  readonly address: string;
}

/**
 * The node's VRRP instances: one per VIP address it serves, its priority from its rank among the
 * address's nodes, its peers the others. Sorted by VRID, so equal input gives equal bytes.
 */
export function planVrrpInstances(node: string, routers: readonly VrrpRouter[]): VrrpInstance[] {
  const out: VrrpInstance[] = [];
  for (const r of [...routers].sort((a, b) => a.vrid - b.vrid)) {
    const rank = r.nodes.findIndex((n) => n.name === node);
    if (rank < 0) continue;
    const others = r.nodes
      .filter((n) => n.name !== node)
      .map((n) => n.address)
      .sort();
    out.push({
      name: `vip_${r.vrid}`,
      vrid: r.vrid,
      priority: vrrpPriority(rank),
      peers: others.length > 0 ? others : [r.nodes[rank]!.address],
      alone: others.length === 0,
      authPass: r.authPass,
      address: r.address,
    });
  }
  return out;
}

/** The lowest VRID not in `taken`, or null when all 255 are. */
export function freeVrid(taken: ReadonlySet<number>): number | null {
  for (let v = VRID_MIN; v <= VRID_MAX; v++) if (!taken.has(v)) return v;
  return null;
}
