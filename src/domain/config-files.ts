/**
 * Where a node's files live, relative to its configDir: the contract between the renderers that
 * write them and the agent that stages, validates and reloads them. Kept here, inward of both,
 * so neither imports the other.
 */

/** A HAProxy node's files. */
export const HAPROXY_FILES = {
  config: 'haproxy.cfg',
  capsMap: 'maps/tenant-caps.map',
  /** The regex of request paths every HTTP frontend refuses (render/request-rules.ts), loaded once. */
  ambiguousPath: 'maps/ambiguous-path.pat',
  /** Written by the agent (`show servers state`) before a reload, never rendered. */
  serverState: 'state/server-state',
} as const;

/** An NGINX node's files. */
export const NGINX_FILES = {
  config: 'nginx.conf',
  pid: 'nginx.pid',
  errorLog: 'error.log',
} as const;
