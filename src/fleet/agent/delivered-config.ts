import { z } from 'zod';
import { NODE_KINDS, type NodeKind } from '../../domain/node.js';
import { HAPROXY_FILES, NGINX_FILES } from '../../domain/config-files.js';

const hash = z.string().regex(/^[0-9a-f]{64}$/);
/** Relative names of slugs and dots: nothing the agent writes may leave the release directory. */
const fileName = z
  .string()
  .max(1000)
  .regex(
    /^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/,
    'must be a relative path without . or .. segments',
  );

/**
 * What `GET /v1/nodes/{node}/config` answers, as the agent checks it: the agent writes these
 * files as whoever runs the proxy, so the answer is checked, not trusted.
 */
export const deliveredConfigSchema = z.object({
  node: z.string(),
  kind: z.enum(NODE_KINDS),
  revision: z.number().int().min(0),
  contentHash: hash,
  structuralHash: hash,
  files: z.record(fileName, z.string()),
  heldTenants: z
    .array(z.object({ tenant: z.string(), error: z.string(), servingRevision: z.number().nullable() }))
    .default([]),
  createdAt: z.string(),
});
export type DeliveredConfig = z.output<typeof deliveredConfigSchema>;

const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The file that names configDir in each kind's main config, and how. */
const MAIN: Record<NodeKind, { file: string; dirOf: RegExp }> = {
  haproxy: {
    file: HAPROXY_FILES.config,
    dirOf: new RegExp(`^\\s*server-state-file (/\\S*)/${literal(HAPROXY_FILES.serverState)}$`, 'm'),
  },
  nginx: { file: NGINX_FILES.config, dirOf: new RegExp(`^pid (/\\S*)/${literal(NGINX_FILES.pid)};$`, 'm') },
};

/**
 * Why this agent must not apply the config, or null. Files rendered for another node, kind or
 * directory would run with paths that point nowhere (or somewhere else): refuse, and say so.
 */
export function deliveryProblem(
  config: DeliveredConfig,
  expected: { node: string; kind: NodeKind; configDir: string },
): string | null {
  if (config.node !== expected.node)
    return `the control plane sent the config of node ${config.node}, not ${expected.node}`;
  if (config.kind !== expected.kind)
    return `node ${config.node} is a ${config.kind} node but this agent runs with --kind ${expected.kind}`;
  const main = MAIN[config.kind];
  const text = config.files[main.file];
  if (text === undefined) return `the config has no ${main.file}`;
  const renderedFor = main.dirOf.exec(text)?.[1];
  if (renderedFor !== undefined && renderedFor !== expected.configDir) {
    return `the files were rendered for configDir ${renderedFor} but this agent runs with --config-dir ${expected.configDir}: make the node's configDir (PATCH /v1/nodes/${config.node}) and --config-dir the same`;
  }
  return null;
}
