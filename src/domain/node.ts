import { z } from 'zod';
import { port, resources, slug, ipAddress } from './fields.js';
import type { Resources } from './tenant.js';

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
  nginx: { runtimeApi: false, activeHealthChecks: false, cookiePersistence: 'hash', hitlessMemberChanges: false },
};

export interface ProxyNode {
  readonly name: string;
  readonly kind: NodeKind;
  readonly group: string;
  readonly zone: string;
  /** The HAProxy Runtime API listener (`stats socket ipv4@host:port level admin`), or null. */
  readonly runtimeAddress: RuntimeAddress | null;
  readonly capacity: Resources;
  readonly capabilities: NodeCapabilities;
  readonly appliedRevision: number | null;
  readonly lastHeartbeatAt: string | null;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export const runtimeAddress = z.strictObject({ host: ipAddress, port });
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
    runtimeAddress: runtimeAddress.nullable().default(null),
    capacity: resources,
  })
  .superRefine((n, ctx) => {
    if (n.kind === 'nginx' && n.runtimeAddress !== null) {
      ctx.addIssue({ code: 'custom', path: ['runtimeAddress'], message: 'nginx nodes have no runtime API' });
    }
  });
export type CreateNode = z.output<typeof createNodeSchema>;

export const patchNodeSchema = z.strictObject({
  group: slug.optional(),
  zone: slug.optional(),
  runtimeAddress: runtimeAddress.nullable().optional(),
  capacity: resources.optional(),
});
export type PatchNode = z.output<typeof patchNodeSchema>;

export function formatRuntimeAddress(a: { host: string; port: number } | null): string | null {
  if (a === null) return null;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
