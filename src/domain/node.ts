import { z } from 'zod';
import { hostname, port, resources, slug, ipAddress } from './fields.js';
import type { Resources } from './tenant.js';
import { vrrpSettingsSchema, type VrrpSettings } from './vrrp.js';

export const NODE_KINDS = ['haproxy', 'nginx'] as const;
export type NodeKind = (typeof NODE_KINDS)[number];

/** What a proxy kind can do, so clients know what a node renders faithfully and what it approximates. */
export interface NodeCapabilities {
  readonly runtimeApi: boolean;
  readonly activeHealthChecks: boolean;
  readonly cookiePersistence: 'insert' | 'hash';
  readonly hitlessMemberChanges: boolean;
}

export const CAPABILITIES: Record<NodeKind, NodeCapabilities> = {
  haproxy: { runtimeApi: true, activeHealthChecks: true, cookiePersistence: 'insert', hitlessMemberChanges: true },
  // The Lua runtime (templates/nginx/lua): a runtime channel, active checks once per node, HAProxy's
  // cookie values, members changed without a reload. TCP VIPs are the exception (docs/nginx.md).
  nginx: { runtimeApi: true, activeHealthChecks: true, cookiePersistence: 'insert', hitlessMemberChanges: true },
};

export interface ProxyNode {
  readonly name: string;
  readonly kind: NodeKind;
  readonly group: string;
  readonly zone: string;
  /**
   * The machine the node's proxy runs on (default: the node's name, a machine of its own). Nodes
   * that share a machine must say so: placement never puts one tenant on two nodes of one host,
   * where both proxies would bind its VIP:port (NGINX with `reuseport`) and share its connections.
   */
  readonly host: string;
  /**
   * Where the control plane reaches the node's runtime state, or null: on HAProxy an mTLS listener
   * that HAProxy itself terminates and forwards to the admin socket in `socketDir`; on NGINX the
   * Lua runtime channel's HTTPS listener, client certificate required (never plain text).
   */
  readonly runtimeAddress: RuntimeAddress | null;
  /**
   * Where the control plane reaches the HAProxy master CLI, or null: an mTLS listener forwarding
   * to `<socketDir>/master.sock` (`haproxy -W -S <socketDir>/master.sock`). The stats poller
   * reads the old workers a reload left serving sessions through it.
   */
  readonly masterAddress: RuntimeAddress | null;
  /** Local directory of the node's unix sockets: `admin.sock` (rendered) and `master.sock` (haproxy -S). */
  readonly socketDir: string;
  /** The certificate the node presents on its Runtime API (issued by Switchyard's CA), or null before one is issued. */
  readonly runtimeCertificate: RuntimeCertificateInfo | null;
  readonly capacity: Resources;
  /** Where the agent keeps this node's files; rendered configs refer to maps and certificates there. */
  readonly configDir: string;
  /** VRRP settings: the node owns VIP addresses with keepalived; null renders no keepalived file. */
  readonly vrrp: VrrpSettings | null;
  readonly capabilities: NodeCapabilities;
  readonly appliedRevision: number | null;
  readonly lastHeartbeatAt: string | null;
  /**
   * Set while the leader keeps the node out of placement (missed heartbeats, Runtime API down):
   * its tenants are served by other nodes until it is healthy again.
   */
  readonly placementExcluded: { readonly reason: string; readonly since: string } | null;
  /**
   * Reloads the reconciler asked for, for changes the Runtime API cannot make safely (a cap raise
   * on a full frontend): each new generation gives the node's config a new structural hash.
   */
  readonly reloadRequest: { readonly generation: number; readonly reason: string | null };
  /** What the fleet reports and what the control plane pushed: observed, never desired, state. */
  readonly status: NodeStatus;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What the node reported and was pushed; whether that makes it converged is decided in node-convergence.ts. */
export interface NodeStatus {
  /** Revision and content hash of the latest config built for the node (what it should run). */
  readonly desiredRevision: number | null;
  readonly desiredHash: string | null;
  /** Content hash of the config version the agent last applied. */
  readonly appliedHash: string | null;
  readonly appliedAt: string | null;
  readonly reloadCount: number;
  readonly proxyVersion: string | null;
  readonly agentVersion: string | null;
  /** The validator's or the proxy's own message from the last failed apply, until an apply succeeds. */
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
  readonly runtime: {
    /** Revision whose runtime changes are live on the node (Runtime API), or null. */
    readonly revision: number | null;
    /** Commands planned but not yet acknowledged by the node. */
    readonly pending: number;
    readonly error: string | null;
    /** When the current run of failed pushes began (null while pushes succeed). */
    readonly errorSince: string | null;
    readonly pushedAt: string | null;
    readonly commandsSent: number;
    readonly commandsFailed: number;
  };
}

/** A proxy's own error output: may span lines; stored and shown, never rendered. */
const reportMessage = z
  .string()
  .min(1)
  .max(16_384)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to refuse NUL, which ends a C string in the proxy.
  .regex(/^[^\u0000]*$/, 'must not contain NUL');
/** A version string: one printable line. */
const reportVersion = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[^\p{C}]+$/u, 'must be one printable line');

/** A listener the agent found it cannot bind after a refused reload (see fleet/agent/listener-probe.ts). */
export const failedListenerSchema = z.strictObject({
  address: ipAddress,
  port,
  reason: z.enum(['in-use', 'address-not-available']),
});

export const nodeReportSchema = z
  .strictObject({
    event: z.enum(['heartbeat', 'applied', 'failed']),
    /** With a failed reload: the new listeners that could not be bound, so their tenants can be held on this node. */
    failedListeners: z.array(failedListenerSchema).max(256).optional(),
    contentHash: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'must be the contentHash of a config version')
      .optional(),
    revision: z.number().int().min(0).optional(),
    reloaded: z.boolean().default(false),
    error: reportMessage.optional(),
    proxyVersion: reportVersion.optional(),
    agentVersion: reportVersion.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.event === 'applied' && (r.contentHash === undefined || r.revision === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['contentHash'],
        message: 'an applied report names the contentHash and revision it applied',
      });
    }
    if (r.failedListeners !== undefined && r.event !== 'failed') {
      ctx.addIssue({
        code: 'custom',
        path: ['failedListeners'],
        message: 'only a failed report names listeners that failed',
      });
    }
    if (r.event === 'failed' && r.error === undefined) {
      ctx.addIssue({ code: 'custom', path: ['error'], message: 'a failed report carries the error' });
    }
  });
export type NodeReport = z.output<typeof nodeReportSchema>;

export const runtimeAddress = z.strictObject({ host: ipAddress, port });

/** What the API shows of a node's Runtime API certificate: never its key. */
export interface RuntimeCertificateInfo {
  /** Hex serial number, as `openssl x509 -serial` prints it. */
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly issuedAt: string;
}

/** An absolute directory on the node, in a character set that is safe in any config directive. */
export const configDir = z
  .string()
  .max(200)
  .regex(/^\/[A-Za-z0-9._/-]*$/, 'must be an absolute path of letters, digits and . _ / -')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ..')
  .transform((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p));
export const DEFAULT_CONFIG_DIR = '/etc/switchyard';
/** Where HAProxy's unix sockets live by default: systemd's `RuntimeDirectory=switchyard`. */
export const DEFAULT_SOCKET_DIR = '/run/switchyard';
export interface RuntimeAddress {
  readonly host: string;
  readonly port: number;
}

export const createNodeSchema = z
  .strictObject({
    name: slug,
    kind: z.enum(NODE_KINDS),
    group: slug.default('default'),
    zone: slug.default('default'),
    host: hostname.nullable().default(null),
    runtimeAddress: runtimeAddress.nullable().default(null),
    masterAddress: runtimeAddress.nullable().default(null),
    capacity: resources,
    configDir: configDir.default(DEFAULT_CONFIG_DIR),
    socketDir: configDir.default(DEFAULT_SOCKET_DIR),
    vrrp: vrrpSettingsSchema.nullable().default(null),
  })
  .superRefine((n, ctx) => {
    if (n.kind === 'nginx' && n.masterAddress !== null) {
      ctx.addIssue({ code: 'custom', path: ['masterAddress'], message: 'nginx nodes have no master CLI' });
    }
    if (n.masterAddress !== null && formatRuntimeAddress(n.masterAddress) === formatRuntimeAddress(n.runtimeAddress)) {
      ctx.addIssue({
        code: 'custom',
        path: ['masterAddress'],
        message: "the master CLI listens on its own address, not on the Runtime API's",
      });
    }
  });
export type CreateNode = z.output<typeof createNodeSchema>;

export const patchNodeSchema = z.strictObject({
  group: slug.optional(),
  zone: slug.optional(),
  /** null: back to the node's own name. */
  host: hostname.nullable().optional(),
  runtimeAddress: runtimeAddress.nullable().optional(),
  masterAddress: runtimeAddress.nullable().optional(),
  capacity: resources.optional(),
  configDir: configDir.optional(),
  socketDir: configDir.optional(),
  vrrp: vrrpSettingsSchema.nullable().optional(),
});
export type PatchNode = z.output<typeof patchNodeSchema>;

export function formatRuntimeAddress(a: { host: string; port: number } | null): string | null {
  if (a === null) return null;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
