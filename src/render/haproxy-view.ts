import type { NodeSettings, NodeSnapshot, TenantSnapshot } from '../domain/snapshot.js';
import { HAPROXY_CAPACITY_FACTORS, toResourceVector } from '../domain/capacity.js';
import { DEFAULT_SOCKET_DIR, NODE_KINDS } from '../domain/node.js';
import { HAPROXY_SOCKETS } from '../domain/config-files.js';
import { isSafe, safe, safeInt, safeOneOf, safePem } from './guard.js';
import { planBackends, backendView, type BackendPlan, type HaproxyBackendView } from './haproxy-backend-view.js';
import { frontendView, type HaproxyFrontendView } from './haproxy-frontend-view.js';
import {
  HAPROXY_FILES,
  UNROUTED_BACKENDS,
  RUNTIME_LISTENERS,
  absolutePath,
  certificateFile,
  crtListFile,
  memberCaFile,
  memberClientCertFile,
  formatDuration,
  formatEndpoint,
  capTableName,
  connectionCapKey,
  rateCapKey,
} from './haproxy-names.js';
import { byName, tenantContext, type TenantContext } from './haproxy-tenant-context.js';
import { usedMemberTlsMaterial } from './member-tls.js';

/**
 * The view model of one node's HAProxy config: plain data in which every decision, default and
 * version-dependent choice (HAProxy 2.6) is already made and every value has passed the guard.
 * The templates in templates/haproxy/ only loop over it and print it.
 */
export interface HaproxyView extends HaproxyNodeView {
  readonly tenants: readonly HaproxyTenantView[];
}

/** What the node contributes on its own: everything above the tenants' parts. */
export interface HaproxyNodeView {
  readonly node: { readonly name: string; readonly revision: number };
  readonly global: HaproxyGlobalView;
  readonly defaults: HaproxyDefaultsView;
  /** The mTLS listeners in front of the local admin socket and master CLI (none without a certificate). */
  readonly runtimeListeners: readonly HaproxyRuntimeListenerView[];
  readonly unrouted: typeof UNROUTED_BACKENDS;
}

export interface HaproxyGlobalView {
  readonly maxconn: number;
  /** Set when maxconn needs more file descriptors than a stock host grants (see PROXIES.md). */
  readonly noStrictLimits: boolean;
  readonly hardStopAfter: string;
  readonly serverStateFile: string;
  /** The local admin socket (unix path, mode 0600), or null without a Runtime API. */
  readonly statsSocket: string | null;
}

/**
 * A `listen` section that terminates mutual TLS and forwards to a local unix socket: the only way
 * the Runtime API or master CLI is reached over the network. HAProxy 2.6 accepts `ssl crt` on a
 * `stats socket` but still serves it in plain text, so the socket itself is never bound to an
 * address (PROXIES.md).
 */
export interface HaproxyRuntimeListenerView {
  readonly name: string;
  readonly bind: string;
  readonly certificate: string;
  readonly ca: string;
  readonly server: { readonly name: string; readonly path: string };
  readonly timeout: string;
  /** Its share of the connections reserved for it above what tenants can use (RUNTIME_API_CONNECTIONS). */
  readonly maxconn: number;
}

export interface HaproxyDefaultsView {
  readonly timeouts: {
    readonly connect: string;
    readonly client: string;
    readonly server: string;
    readonly httpRequest: string;
    readonly httpKeepAlive: string;
  };
}

export interface HaproxyTenantView {
  readonly id: string;
  /** The tenant's stick table: current connections (the connection cap) and admitted-request rate (the rate cap). */
  readonly capTable: { readonly name: string; readonly period: string; readonly expire: string };
  readonly frontends: readonly HaproxyFrontendView[];
  readonly backends: readonly HaproxyBackendView[];
  /** The tenant's lines in `maps/tenant-caps.map`: its request-rate cap (req/s), then its connection cap. */
  readonly caps: readonly { readonly key: string; readonly value: number }[];
  readonly certificates: readonly { readonly file: string; readonly chain: string; readonly key: string }[];
  readonly crtLists: readonly { readonly file: string; readonly certificates: readonly string[] }[];
  /** The CA bundles and client certificates (chain then key) the tenant's TLS pools load. */
  readonly memberTlsFiles: readonly { readonly file: string; readonly content: string }[];
}

const MAXCONN_FLOOR = 256;
/**
 * Connections the global maxconn holds above the tenants' capacity for the mTLS listeners. Unlike
 * the stats socket they front (which HAProxy exempts from maxconn), a `listen` section stops
 * accepting when the process is full: without this reserve, a tenant filling its node would lock
 * out the control plane that is to cap it. Each listener may use all of it (a replica keeps about
 * three connections per node: two lanes and the master CLI).
 */
export const RUNTIME_API_CONNECTIONS = 16;
/** Above this, a 20000-descriptor hard limit cannot cover maxconn x 2 plus listeners. */
const STRICT_LIMITS_CEILING = 9000;
/** Long-lived TCP sessions (SSH) would keep an old worker forever after a reload otherwise. */
const HARD_STOP_AFTER_MS = 30 * 60_000;
/**
 * The rate cap counts admitted requests over this sliding window: short enough that a tenant held
 * at its cap is served at its cap (refusals are not counted), and its burst is one window's worth.
 */
export const RATE_WINDOW_S = 1;
/** Idle tenants' table entries go after this; an entry with open connections never does. */
const CAP_TABLE_EXPIRE_MS = 30_000;

export function toHaproxyView(snapshot: NodeSnapshot): HaproxyView {
  const { configDir } = haproxyNodeSettings(snapshot.node);
  const tenants = [...snapshot.tenants].sort(byId).map((t) => toHaproxyTenantView(t, configDir));
  return { ...toHaproxyNodeView(snapshot), tenants };
}

export function toHaproxyNodeView(snapshot: NodeSnapshot): HaproxyNodeView {
  const node = haproxyNodeSettings(snapshot.node);
  return {
    node: { name: node.name, revision: safeInt('revision', snapshot.revision, 0, Number.MAX_SAFE_INTEGER) },
    global: globalView(snapshot.node, node.configDir),
    defaults: defaultsView(),
    runtimeListeners: runtimeListenersView(snapshot.node, node.configDir),
    unrouted: UNROUTED_BACKENDS,
  };
}

/** The node-level settings every tenant part depends on, guarded. */
export function haproxyNodeSettings(node: NodeSettings): { name: string; configDir: string } {
  safeOneOf('node.kind', node.kind, NODE_KINDS);
  return { name: safe('slug', 'node.name', node.name), configDir: safe('dir', 'node.configDir', node.configDir) };
}

/**
 * One tenant's part of the config, independent of every other tenant: it depends only on the
 * tenant and the node's configDir, so it can be rendered, cached and held back on its own.
 */
export function toHaproxyTenantView(tenant: TenantSnapshot, configDir: string): HaproxyTenantView {
  const { ctx, plans, view } = tenantParts(tenant, configDir);
  const full: HaproxyTenantView = { ...view, backends: plans.map((plan) => backendView(ctx, plan)) };
  assertPlainStrings(tenant, `tenant ${ctx.id}`);
  return full;
}

/**
 * What the Runtime API view needs of a tenant (ctx, backend plans, frontends, rate limit,
 * certificates), guarded as the files are, without the backends' full views: on a tenant of
 * 10,000 members those are most of the work, and the runtime view builds its servers itself.
 */
export function haproxyTenantRuntimeParts(
  tenant: TenantSnapshot,
  configDir: string,
): { ctx: TenantContext; plans: BackendPlan[]; view: Omit<HaproxyTenantView, 'backends'> } {
  const parts = tenantParts(tenant, configDir);
  assertPlainStrings(tenant, `tenant ${parts.ctx.id}`);
  return parts;
}

function tenantParts(
  tenant: TenantSnapshot,
  configDir: string,
): { ctx: TenantContext; plans: BackendPlan[]; view: Omit<HaproxyTenantView, 'backends'> } {
  const ctx = tenantContext(tenant, safe('dir', 'node.configDir', configDir));
  const plans = planBackends(ctx);
  const view = {
    id: ctx.id,
    capTable: { name: capTableName(ctx.id), period: `${RATE_WINDOW_S}s`, expire: formatDuration(CAP_TABLE_EXPIRE_MS) },
    frontends: ctx.vips.map((vip) => frontendView(ctx, vip, plans)),
    caps: [
      { key: rateCapKey(ctx.id), value: ctx.requestsPerSecond },
      { key: connectionCapKey(ctx.id), value: ctx.maxConnections },
    ],
    ...certificateViews(ctx),
    memberTlsFiles: memberTlsFiles(ctx),
  };
  return { ctx, plans, view };
}

function certificateViews(ctx: TenantContext): Pick<HaproxyTenantView, 'certificates' | 'crtLists'> {
  const https = ctx.vips.filter((v) => v.protocol === 'https');
  const used = new Set(https.map((v) => v.certificate!));
  const certificates = [...ctx.certificates.values()]
    .filter((c) => used.has(c.name))
    .sort(byName)
    .map((c) => {
      const field = `${ctx.field}.certificates.${c.name}`;
      const chain = safePem(`${field}.chainPem`, c.chainPem.endsWith('\n') ? c.chainPem : `${c.chainPem}\n`);
      return { file: certificateFile(ctx.id, c.name), chain, key: safePem(`${field}.keyPem`, c.keyPem) };
    });
  const crtLists = https.map((v) => ({
    file: crtListFile(ctx.id, v.name),
    certificates: [
      safe(
        'file',
        `${ctx.field}.vips.${v.name}.certificate`,
        absolutePath(ctx.configDir, certificateFile(ctx.id, v.certificate!)),
      ),
    ],
  }));
  return { certificates, crtLists };
}

/** A TLS pool's files: each CA bundle, and each client certificate as chain then key (what `crt` loads). */
function memberTlsFiles(ctx: TenantContext): HaproxyTenantView['memberTlsFiles'] {
  const { bundles, clients } = usedMemberTlsMaterial(ctx);
  return [
    ...bundles.map((b) => ({ file: memberCaFile(ctx.id, b.name), content: b.pem })),
    ...clients.map((c) => ({ file: memberClientCertFile(ctx.id, c.name), content: c.chainPem + c.keyPem })),
  ];
}

function globalView(node: NodeSettings, configDir: string): HaproxyGlobalView {
  const memoryMb = safeInt('node.capacity.memoryMb', node.capacity.memoryMb, 0, 4_194_304);
  // The same conversion the allocator uses, so tenant caps and the node's cap add up.
  const { connections } = toResourceVector({ vcpu: 0, memoryMb }, HAPROXY_CAPACITY_FACTORS);
  const reserve = runtimeListenersView(node, configDir).length > 0 ? RUNTIME_API_CONNECTIONS : 0;
  const maxconn = Math.max(MAXCONN_FLOOR, connections) + reserve;
  return {
    maxconn,
    noStrictLimits: maxconn > STRICT_LIMITS_CEILING,
    hardStopAfter: formatDuration(HARD_STOP_AFTER_MS),
    serverStateFile: safe('file', 'node.configDir', absolutePath(configDir, HAPROXY_FILES.serverState)),
    statsSocket: node.runtimeAddress === null ? null : socketPath(node, HAPROXY_SOCKETS.admin),
  };
}

/** How long an idle Runtime API session is kept through the listener: the CLI's own `stats timeout`. */
const RUNTIME_SESSION_TIMEOUT_MS = 2 * 60_000;

function runtimeListenersView(node: NodeSettings, configDir: string): HaproxyRuntimeListenerView[] {
  if (node.runtimeTls === undefined || node.runtimeTls === null) return [];
  const certificate = safe('file', 'node.configDir', absolutePath(configDir, HAPROXY_FILES.runtimeCertificate));
  const ca = safe('file', 'node.configDir', absolutePath(configDir, HAPROXY_FILES.runtimeCa));
  const timeout = formatDuration(RUNTIME_SESSION_TIMEOUT_MS);
  const maxconn = RUNTIME_API_CONNECTIONS;
  const listeners: HaproxyRuntimeListenerView[] = [];
  if (node.runtimeAddress !== null) {
    const bind = endpoint('node.runtimeAddress', node.runtimeAddress);
    listeners.push({
      name: RUNTIME_LISTENERS.runtimeApi,
      bind,
      certificate,
      ca,
      timeout,
      maxconn,
      server: { name: 'admin', path: socketPath(node, HAPROXY_SOCKETS.admin) },
    });
  }
  if (node.masterAddress !== undefined && node.masterAddress !== null) {
    const bind = endpoint('node.masterAddress', node.masterAddress);
    listeners.push({
      name: RUNTIME_LISTENERS.masterCli,
      bind,
      certificate,
      ca,
      timeout,
      maxconn,
      server: { name: 'master', path: socketPath(node, HAPROXY_SOCKETS.master) },
    });
  }
  return listeners;
}

/** The node's Runtime API certificate and CA files, rendered only with its TLS material. */
export function runtimeTlsFiles(node: NodeSettings): Record<string, string> {
  const tls = node.runtimeTls;
  if (tls === undefined || tls === null || (node.runtimeAddress === null && (node.masterAddress ?? null) === null))
    return {};
  const leaf = safePem('node.runtimeTls.certificatePem', withNewline(tls.certificatePem));
  const key = safePem('node.runtimeTls.keyPem', withNewline(tls.keyPem));
  return {
    [HAPROXY_FILES.runtimeCertificate]: leaf + key,
    [HAPROXY_FILES.runtimeCa]: safePem('node.runtimeTls.caBundlePem', withNewline(tls.caBundlePem)),
  };
}

function withNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

function endpoint(field: string, address: { host: string; port: number }): string {
  return formatEndpoint(safe('ip', `${field}.host`, address.host), safeInt(`${field}.port`, address.port, 1, 65535));
}

function socketPath(node: NodeSettings, socket: string): string {
  const dir = safe('dir', 'node.socketDir', node.socketDir ?? DEFAULT_SOCKET_DIR);
  return absolutePath(dir, socket);
}

function defaultsView(): HaproxyDefaultsView {
  return {
    timeouts: {
      connect: formatDuration(5_000),
      client: formatDuration(30_000),
      server: formatDuration(30_000),
      httpRequest: formatDuration(10_000),
      httpKeepAlive: formatDuration(10_000),
    },
  };
}

/**
 * Refuses a tenant in which any string, printed or not, holds a character outside the union of
 * what the printed fields allow. A field the renderer starts printing later is then covered
 * already, and a corrupted row is refused whole instead of half-rendered. The walk builds no
 * field names on the way (it runs on every tenant); the offending one is named when found.
 */
function assertPlainStrings(value: unknown, field: string): void {
  const bad = firstUnplainString(value);
  if (bad === null) return;
  const [path, text] = bad;
  const name = `${field}.${path.join('.')}`;
  if (PEM_KEYS.has(String(path.at(-1)))) safePem(name, text);
  safe('text', name, text);
}

const PEM_KEYS = new Set(['chainPem', 'keyPem', 'pem']);

function firstUnplainString(value: unknown): [(string | number)[], string] | null {
  if (typeof value === 'string') return isSafe('text', value) ? null : [[], value];
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = firstUnplainString(value[i]);
      if (bad !== null) return [[i, ...bad[0]], bad[1]];
    }
    return null;
  }
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    if (PEM_KEYS.has(key)) {
      if (!isPem(item)) return [[key], String(item)];
      continue;
    }
    const bad = firstUnplainString(item);
    if (bad !== null) return [[key, ...bad[0]], bad[1]];
  }
  return null;
}

function isPem(value: unknown): boolean {
  try {
    safePem('', String(value));
    return true;
  } catch {
    return false;
  }
}

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
