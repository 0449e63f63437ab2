import { NGINX_CAPACITY_FACTORS, toResourceVector } from '../domain/capacity.js';
import { NODE_KINDS } from '../domain/node.js';
import type { NodeSettings, NodeSnapshot, TenantSnapshot } from '../domain/snapshot.js';
import { safe, safeInt, safeOneOf, safePem } from './guard.js';
import { byName, tenantContext, type TenantContext } from './haproxy-tenant-context.js';
import { httpTenantView, type NginxHttpTenantView, type NginxZoneView } from './nginx-http-view.js';
import {
  NGINX_FILES,
  NGINX_TEMP_DIRS,
  NODE_NAMES,
  absolutePath,
  certificateFile,
  formatEndpoint,
  formatMillis,
  keyFile,
  memberCaFile,
  memberClientCertFile,
  memberClientKeyFile,
} from './nginx-names.js';
import { usedMemberTlsMaterial } from './member-tls.js';
import { streamTenantView, type NginxStreamTenantView } from './nginx-stream-view.js';
import { LUA_DIR } from './nginx-lua-files.js';
import { nginxListenIp } from './nginx-address.js';
import { AMBIGUOUS_REQUEST_URI_REGEX } from './request-rules.js';

/**
 * The view model of one node's NGINX config (nginx 1.22 open source): plain data in which every
 * decision and default is made and every value has passed the guard. The templates in
 * templates/nginx/ only loop over it and print it.
 */
export interface NginxView {
  readonly node: { readonly name: string; readonly revision: number };
  readonly main: NginxMainView;
  readonly tenants: readonly NginxTenantView[];
}

export interface NginxMainView {
  /** `load_module` path of the stream module, when a TCP VIP needs it and it is not built in. */
  readonly streamModule: string | null;
  readonly hasStream: boolean;
  readonly pidFile: string;
  readonly errorLog: string;
  readonly workerConnections: number;
  readonly workerRlimitNofile: number;
  readonly workerShutdownTimeout: string;
  readonly tempPaths: Readonly<Record<keyof typeof NGINX_TEMP_DIRS, string>>;
  readonly tlsSessionCache: { readonly name: string; readonly size: string } | null;
  readonly connectionUpgrade: string;
  readonly forwardedHost: string;
  /** The raw path variable routes compare, and the variable that flags an ambiguous path (request-rules.ts). */
  readonly requestPath: string;
  readonly ambiguousPath: { readonly variable: string; readonly regex: string };
  /** TCP VIPs' `limit_conn_zone`, keyed by VIP, sized for every TCP VIP of the node (HTTP caps are Lua's). */
  readonly connectionZones: { readonly stream: NginxZoneView };
  /** `load_module` paths of NDK and ngx_http_lua, or empty when the binary has them built in (OpenResty). */
  readonly luaModules: readonly string[];
  readonly lua: NginxLuaView;
  /** The runtime channel's server, or null without a runtime address and its certificate. */
  readonly runtimeChannel: NginxRuntimeChannelView | null;
}

/** How the Lua module is set up on the node (see templates/nginx/lua/switchyard/init.lua). */
export interface NginxLuaView {
  readonly packagePath: string;
  readonly stateFile: string;
  readonly dicts: readonly NginxZoneView[];
  /** The largest push the channel takes (a complete state at this node's size, with room). */
  readonly maxBodyBytes: number;
}

export interface NginxRuntimeChannelView {
  readonly listen: string;
  /** The node's certificate and key in one PEM (ssl_certificate and ssl_certificate_key read the same file). */
  readonly certificate: string;
  /** The CAs a client certificate must come from: Switchyard's. */
  readonly clientCa: string;
  readonly maxBody: string;
}

export interface NginxTenantView {
  readonly id: string;
  readonly http: NginxHttpTenantView | null;
  readonly stream: NginxStreamTenantView | null;
  readonly certificates: readonly NginxCertificateView[];
  /** The CA bundles and client certificates and keys the tenant's TLS pools load. */
  readonly memberTlsFiles: readonly { readonly file: string; readonly content: string }[];
  /** `address:port` → `tenant/vip`, to refuse two VIPs on one listener. */
  readonly listeners: readonly { readonly endpoint: string; readonly vip: string }[];
  readonly usesTls: boolean;
}

export interface NginxCertificateView {
  readonly crtFile: string;
  readonly keyFile: string;
  readonly chain: string;
  readonly key: string;
}

export interface NginxRenderOptions {
  /**
   * Where the dynamic stream module lives (Debian and Ubuntu ship it as libnginx-mod-stream);
   * null when the nginx binary has it built in (nginx.org packages).
   */
  readonly streamModule?: string | null;
  /** NDK and ngx_http_lua (Debian: libnginx-mod-http-ndk, libnginx-mod-http-lua); null when built in. */
  readonly luaModules?: readonly string[] | null;
}

export const DEFAULT_LUA_MODULES = [
  '/usr/lib/nginx/modules/ndk_http_module.so',
  '/usr/lib/nginx/modules/ngx_http_lua_module.so',
] as const;

export const DEFAULT_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/**
 * The node's connection capacity, the one the allocator hands out in caps (NGINX_CAPACITY_FACTORS):
 * each worker may take all of it, and each proxied connection holds a client and an upstream socket.
 * Sized lower than the caps can add up to, a flood could fill the workers' connections while every
 * tenant is within its cap, and a reservation would not be guaranteed.
 */
const SOCKETS_PER_CONNECTION = 2;
const WORKER_CONNECTIONS_FLOOR = 1024;
/**
 * Linux's default per-process descriptor ceiling (fs.nr_open): a worker cannot open more, and
 * nginx allocates every worker connection up front (about 0.5 kB each).
 */
const DESCRIPTORS_CEILING = 1_048_576;
/** Descriptors beyond connections: logs, certificates being read, the listeners themselves. */
const SPARE_DESCRIPTORS = 1024;
/** Like HAProxy's hard-stop-after: old workers finish in-flight work after a reload but never linger. */
const WORKER_SHUTDOWN_MS = 30 * 60_000;
const TLS_SESSION_CACHE = '10m';
/** A connection-count state: tree node, counter and an `[IPv6]:port` key, rounded up by the slab allocator. */
const CONNECTION_ZONE_BYTES_PER_VIP = 256;
const CONNECTION_ZONE_MIN_KB = 64;

export function toNginxView(snapshot: NodeSnapshot, options: NginxRenderOptions = {}): NginxView {
  const node = nginxNodeSettings(snapshot.node);
  const tenants = [...snapshot.tenants]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((t) => toNginxTenantView(t, node.configDir));
  return {
    node: { name: node.name, revision: safeInt('revision', snapshot.revision, 0, Number.MAX_SAFE_INTEGER) },
    main: nginxMainView(node, tenants, options),
    tenants,
  };
}

export interface NginxNodeSettings {
  readonly name: string;
  readonly configDir: string;
  readonly memoryMb: number;
  /** `address:port` of the runtime channel, rendered only with the node's certificate. */
  readonly runtimeChannel: string | null;
}

/** The node-level settings every tenant part depends on, guarded. */
export function nginxNodeSettings(node: NodeSettings): NginxNodeSettings {
  // The PEMs are checked as PEM where they are written (runtimeTlsFiles).
  const { runtimeTls, ...plain } = node;
  assertPlainStrings(plain, 'node');
  safeOneOf('node.kind', node.kind, NODE_KINDS);
  let runtimeChannel: string | null = null;
  if (node.runtimeAddress !== null) {
    const host = nginxListenIp('node.runtimeAddress.host', node.runtimeAddress.host);
    const port = safeInt('node.runtimeAddress.port', node.runtimeAddress.port, 1, 65535);
    if (runtimeTls !== undefined && runtimeTls !== null) runtimeChannel = formatEndpoint(host, port);
  }
  return {
    name: safe('slug', 'node.name', node.name),
    configDir: safe('dir', 'node.configDir', node.configDir),
    memoryMb: safeInt('node.capacity.memoryMb', node.capacity.memoryMb, 0, 4_194_304),
    runtimeChannel,
  };
}

/**
 * One tenant's part of the config: it depends only on the tenant and the node's configDir, so
 * it can be rendered, cached and held back at its last good version on its own.
 */
export function toNginxTenantView(tenant: TenantSnapshot, configDir: string): NginxTenantView {
  // First, so a poisoned string anywhere is refused as unsafe before any rule reads it.
  assertPlainStrings(tenant, `tenant ${String(tenant.id).slice(0, 64)}`);
  const ctx = tenantContext(tenant, safe('dir', 'node.configDir', configDir));
  const http = httpTenantView(ctx);
  const stream = streamTenantView(ctx);
  const servers = [...(http?.servers ?? []), ...(stream?.servers ?? [])];
  return {
    id: ctx.id,
    http,
    stream,
    certificates: certificateViews(ctx),
    memberTlsFiles: memberTlsFiles(ctx),
    listeners: servers.map((s) => ({ endpoint: s.listen, vip: s.vip })),
    usesTls: http?.servers.some((s) => s.ssl) ?? false,
  };
}

export function nginxMainView(
  node: NginxNodeSettings,
  tenants: readonly NginxTenantView[],
  options: NginxRenderOptions,
): NginxMainView {
  const dir = node.configDir;
  const { connections } = toResourceVector({ vcpu: 0, memoryMb: node.memoryMb }, NGINX_CAPACITY_FACTORS);
  const listeners = tenants.reduce((n, t) => n + t.listeners.length, 0);
  const workerConnections = Math.min(
    DESCRIPTORS_CEILING - SPARE_DESCRIPTORS - listeners,
    Math.max(WORKER_CONNECTIONS_FLOOR, connections * SOCKETS_PER_CONNECTION + listeners),
  );
  const hasStream = tenants.some((t) => t.stream !== null);
  const lua = luaView(dir, tenants);
  const module = options.streamModule === undefined ? DEFAULT_STREAM_MODULE : options.streamModule;
  const tempPaths = Object.fromEntries(
    Object.entries(NGINX_TEMP_DIRS).map(([key, name]) => [
      key,
      safe('file', 'node.configDir', absolutePath(dir, name)),
    ]),
  ) as Record<keyof typeof NGINX_TEMP_DIRS, string>;
  return {
    streamModule: hasStream && module !== null ? safe('file', 'options.streamModule', module) : null,
    hasStream,
    pidFile: safe('file', 'node.configDir', absolutePath(dir, NGINX_FILES.pid)),
    errorLog: safe('file', 'node.configDir', absolutePath(dir, NGINX_FILES.errorLog)),
    workerConnections,
    workerRlimitNofile: Math.min(DESCRIPTORS_CEILING, workerConnections + listeners + SPARE_DESCRIPTORS),
    workerShutdownTimeout: formatMillis(WORKER_SHUTDOWN_MS),
    tempPaths,
    tlsSessionCache: tenants.some((t) => t.usesTls)
      ? { name: NODE_NAMES.tlsSessionCache, size: TLS_SESSION_CACHE }
      : null,
    connectionUpgrade: NODE_NAMES.connectionUpgrade,
    forwardedHost: NODE_NAMES.forwardedHost,
    requestPath: NODE_NAMES.requestPath,
    ambiguousPath: { variable: NODE_NAMES.ambiguousPath, regex: AMBIGUOUS_REQUEST_URI_REGEX },
    luaModules:
      options.luaModules === null
        ? []
        : (options.luaModules ?? DEFAULT_LUA_MODULES).map((m, i) => safe('file', `options.luaModules[${i}]`, m)),
    lua,
    runtimeChannel:
      node.runtimeChannel === null
        ? null
        : {
            listen: node.runtimeChannel,
            certificate: safe('file', 'node.configDir', absolutePath(dir, NGINX_FILES.runtimeCertificate)),
            clientCa: safe('file', 'node.configDir', absolutePath(dir, NGINX_FILES.runtimeCa)),
            maxBody: `${Math.ceil(lua.maxBodyBytes / MB)}m`,
          },
    connectionZones: {
      stream: connectionZone(
        NODE_NAMES.streamConnectionZone,
        tenants.reduce((n, t) => n + (t.stream?.servers.length ?? 0), 0),
      ),
    },
  };
}

const MB = 1024 * 1024;

/**
 * Shared dictionaries, sized from what is structural (upstreams, VIPs, tenants) so that a member
 * added at run time never changes nginx.conf; each has room for upstreams of PEERS_PER_UPSTREAM
 * members on average, is at least its floor, and grows in 16 MB steps (so a tenant more is
 * rarely a new size). A full dictionary never evicts: the write that did not fit is refused
 * (a push answers 507 naming the entry, stats count `overflow`), see docs/nginx.md.
 */
const PEERS_PER_UPSTREAM = 8;
const DICT_STEP_MB = 16;
const DICTS: readonly { readonly name: string; readonly floorMb: number; readonly bytes: (n: Counts) => number }[] = [
  // An entry is its JSON (about 120 bytes a peer, 400 for the rest) plus slab overhead.
  { name: 'sy_state', floorMb: 16, bytes: (n) => n.upstreams * (512 + PEERS_PER_UPSTREAM * 192) + n.tenants * 256 },
  // Ten counters per VIP, upstream and peer, each a key of about 100 bytes.
  {
    name: 'sy_stats',
    floorMb: 16,
    bytes: (n) => (n.vips + n.upstreams * (1 + PEERS_PER_UPSTREAM)) * 10 * 160,
  },
  // In flight per tenant, VIP, upstream and peer, and two rate windows per tenant.
  {
    name: 'sy_live',
    floorMb: 16,
    bytes: (n) => (n.tenants * 3 + n.vips + n.upstreams * (1 + PEERS_PER_UPSTREAM)) * 160,
  },
  // A verdict and its streak per checked peer.
  { name: 'sy_health', floorMb: 16, bytes: (n) => n.upstreams * PEERS_PER_UPSTREAM * 320 },
  // Locks and leases only.
  { name: 'sy_locks', floorMb: 1, bytes: () => 0 },
];

interface Counts {
  readonly tenants: number;
  readonly vips: number;
  readonly upstreams: number;
}

function luaView(dir: string, tenants: readonly NginxTenantView[]): NginxLuaView {
  const counts: Counts = {
    tenants: tenants.length,
    vips: tenants.reduce((n, t) => n + (t.http?.servers.length ?? 0), 0),
    upstreams: tenants.reduce((n, t) => n + (t.http?.upstreams.length ?? 0), 0),
  };
  const state = DICTS[0]!.bytes(counts);
  return {
    // The directory is guarded; `?.lua` is Lua's own pattern for a module's file.
    packagePath: `${safe('file', 'node.configDir', absolutePath(dir, LUA_DIR))}/?.lua`,
    stateFile: safe('file', 'node.configDir', absolutePath(dir, NGINX_FILES.runtimeState)),
    dicts: DICTS.map((d) => {
      const mb = Math.max(d.floorMb, Math.ceil(d.bytes(counts) / MB / DICT_STEP_MB) * DICT_STEP_MB);
      return { name: d.name, size: `${mb}m` };
    }),
    // A complete push is about the state's size in JSON: twice it, at least 16 MB.
    maxBodyBytes: Math.max(16 * MB, Math.ceil((state * 2) / MB) * MB),
  };
}

function connectionZone(name: string, vips: number): NginxZoneView {
  return {
    name,
    size: `${Math.max(CONNECTION_ZONE_MIN_KB, Math.ceil((vips * CONNECTION_ZONE_BYTES_PER_VIP) / 1024))}k`,
  };
}

/** Only certificates an https VIP uses reach the node: an unused key is a secret with no purpose there. */
function certificateViews(ctx: TenantContext): NginxCertificateView[] {
  const used = new Set(ctx.vips.filter((v) => v.protocol === 'https').map((v) => v.certificate!));
  return [...ctx.certificates.values()]
    .filter((c) => used.has(c.name))
    .sort(byName)
    .map((c) => {
      const field = `${ctx.field}.certificates.${c.name}`;
      return {
        crtFile: certificateFile(ctx.id, c.name),
        keyFile: keyFile(ctx.id, c.name),
        chain: safePem(`${field}.chainPem`, c.chainPem.endsWith('\n') ? c.chainPem : `${c.chainPem}\n`),
        key: safePem(`${field}.keyPem`, c.keyPem.endsWith('\n') ? c.keyPem : `${c.keyPem}\n`),
      };
    });
}

/** A TLS pool's files: each CA bundle, and each client certificate's chain and key. */
function memberTlsFiles(ctx: TenantContext): NginxTenantView['memberTlsFiles'] {
  const { bundles, clients } = usedMemberTlsMaterial(ctx);
  return [
    ...bundles.map((b) => ({ file: memberCaFile(ctx.id, b.name), content: b.pem })),
    ...clients.flatMap((c) => [
      { file: memberClientCertFile(ctx.id, c.name), content: c.chainPem },
      { file: memberClientKeyFile(ctx.id, c.name), content: c.keyPem },
    ]),
  ];
}

/**
 * Refuses any string, printed or not, holding a character outside the union of what the printed
 * fields allow (PEM fields get the PEM rule). A field printed later is then covered already, and
 * a corrupted row is refused whole instead of half-rendered.
 */
function assertPlainStrings(value: unknown, field: string): void {
  if (typeof value === 'string') {
    safe('text', field, value);
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => {
      assertPlainStrings(item, `${field}[${i}]`);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === 'chainPem' || key === 'keyPem' || key === 'pem') safePem(`${field}.${key}`, String(item));
      else assertPlainStrings(item, `${field}.${key}`);
    }
  }
}
