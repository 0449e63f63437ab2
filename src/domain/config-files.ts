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
  /** The node's Runtime API certificate and key (what its mTLS listeners present). */
  runtimeCertificate: 'runtime-api/node.pem',
  /** The CAs whose client certificates the mTLS listeners accept (Switchyard's). */
  runtimeCa: 'runtime-api/ca.pem',
} as const;

/** The unix sockets in a HAProxy node's socketDir: the admin socket (rendered) and the master CLI (`haproxy -S`). */
export const HAPROXY_SOCKETS = {
  admin: 'admin.sock',
  master: 'master.sock',
} as const;

/** An NGINX node's files. */
export const NGINX_FILES = {
  config: 'nginx.conf',
  pid: 'nginx.pid',
  errorLog: 'error.log',
  /** The runtime state the Lua module loads at start and after a reload (JSON lines; see render/nginx-runtime-view.ts). */
  runtimeState: 'runtime-state.jsonl',
  /**
   * The runtime channel's certificate and key, and the CAs its clients' certificates must come
   * from: the same files as HAProxy's Runtime API listener, written by the same runtimeTlsFiles.
   */
  runtimeCertificate: HAPROXY_FILES.runtimeCertificate,
  runtimeCa: HAPROXY_FILES.runtimeCa,
} as const;

/** Beside either kind, on nodes with VRRP settings: keepalived reads it (`keepalived -f <configDir>/keepalived.conf`). */
export const KEEPALIVED_FILES = {
  config: 'keepalived.conf',
} as const;
