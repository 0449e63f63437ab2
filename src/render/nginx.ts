import { ValidationError } from '../domain/errors.js';
import {
  joinSegments,
  type NodeSnapshot,
  type RenderedFiles,
  type SegmentedFiles,
  type TenantSnapshot,
} from '../domain/snapshot.js';
import { runtimeTlsFiles } from './haproxy-view.js';
import { LUA_MODULE_FILES } from './nginx-lua-files.js';
import { NGINX_FILES } from './nginx-names.js';
import { tenantNginxRuntime, type TenantRuntime } from './nginx-runtime-view.js';
import {
  nginxMainView,
  nginxNodeSettings,
  toNginxTenantView,
  type NginxRenderOptions,
  type NginxTenantView,
} from './nginx-view.js';
import { loadTemplates } from './templates.js';
import { FragmentLists } from './fragment-lists.js';
import { CheckedListeners } from './checked-listeners.js';

const templates = loadTemplates('nginx');

function template(name: string): HandlebarsTemplateDelegate {
  const compiled = templates.get(name);
  if (compiled === undefined) throw new Error(`templates/nginx/${name}.hbs is missing`);
  return compiled;
}

const mainTemplate = template('nginx');
const httpTemplate = template('http-tenant');
const streamTemplate = template('stream-tenant');

/** A tenant's rendered part: its `http {}` and `stream {}` text and its own files. */
export interface NginxTenantFragment {
  readonly tenant: string;
  readonly view: NginxTenantView;
  readonly http: string;
  readonly stream: string;
  /**
   * `http` and `stream` as the main file holds them (with their line end), made once: a build's
   * pieces are then the same strings as the last build's for every unchanged tenant, which is what
   * lets the store recognise them without hashing them again.
   */
  readonly pieces: { readonly http: string; readonly stream: string };
  readonly files: Readonly<Record<string, string>>;
  /** The tenant's runtime entries (upstreams, caps): its lines of runtime-state.jsonl. */
  readonly runtime: TenantRuntime;
}

/** Snapshots are immutable values: an unchanged tenant object is not rendered again. */
const fragmentCache = new WeakMap<TenantSnapshot, { configDir: string; fragment: NginxTenantFragment }>();

/**
 * Renders a node's whole NGINX configuration: `nginx.conf` (http and stream) and, per https VIP,
 * `certs/<tenant>/<cert>.crt` and `.key`, keyed by path relative to `node.configDir`, which every
 * reference in `nginx.conf` points into (pid, logs and temp files included). Throws
 * `UnsafeValueError` for a value the guard refuses and `ValidationError` for a snapshot that
 * cannot be rendered (dangling reference, shared listener), always before any content is returned.
 */
export function renderNginx(snapshot: NodeSnapshot, options: NginxRenderOptions = {}): RenderedFiles {
  return joinSegments(renderNginxSegments(snapshot, options));
}

/** `renderNginx` before the join: each tenant's `http {}` and `stream {}` parts are pieces of their own. */
export function renderNginxSegments(snapshot: NodeSnapshot, options: NginxRenderOptions = {}): SegmentedFiles {
  const { configDir } = nginxNodeSettings(snapshot.node);
  const sorted = [...snapshot.tenants].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const fragments = fragmentLists.of(sorted, configDir);
  return assembleNginxSegments(snapshot, fragments, options);
}

/** Whole nodes' fragments, lined up with the last render for the same directory. */
const fragmentLists = new FragmentLists(renderNginxTenant);

/** One tenant's part alone: what a preview shows, and what a node holds back when it fails. */
export function renderNginxTenant(tenant: TenantSnapshot, configDir: string): NginxTenantFragment {
  const cached = fragmentCache.get(tenant);
  if (cached !== undefined && cached.configDir === configDir) return cached.fragment;
  const view = toNginxTenantView(tenant, configDir);
  const files: Record<string, string> = {};
  for (const cert of view.certificates) {
    files[cert.crtFile] = cert.chain;
    files[cert.keyFile] = cert.key;
  }
  for (const { file, content } of view.memberTlsFiles) files[file] = content;
  // Without the final newline: nginx.hbs puts each part on lines of its own.
  const http = view.http === null ? '' : httpTemplate(view).trimEnd();
  const stream = view.stream === null ? '' : streamTemplate(view).trimEnd();
  const fragment: NginxTenantFragment = {
    tenant: view.id,
    view,
    http,
    stream,
    pieces: { http: http === '' ? '' : flat(`${http}\n`), stream: stream === '' ? '' : flat(`${stream}\n`) },
    files,
    runtime: tenantNginxRuntime(tenant),
  };
  fragmentCache.set(tenant, { configDir, fragment });
  return fragment;
}

/**
 * Joins tenant fragments (in the order given: sorted by tenant for a deterministic file) under
 * the node's main, http and stream settings. A caller holding one tenant at its last good
 * fragment calls it directly with that fragment in the tenant's place.
 */
export function assembleNginx(
  snapshot: NodeSnapshot,
  fragments: readonly NginxTenantFragment[],
  options: NginxRenderOptions = {},
): RenderedFiles {
  return joinSegments(assembleNginxSegments(snapshot, fragments, options));
}

/** Where the tenants' parts go in the main template's output; the guard refuses NUL in every value. */
const HTTP_MARK = '\u0000switchyard-http\u0000';
const STREAM_MARK = '\u0000switchyard-stream\u0000';

export function assembleNginxSegments(
  snapshot: NodeSnapshot,
  fragments: readonly NginxTenantFragment[],
  options: NginxRenderOptions = {},
): SegmentedFiles {
  const node = nginxNodeSettings(snapshot.node);
  checkedListeners.check(node.configDir, fragments, checkListenersNow);
  const main = nginxMainView(
    node,
    fragments.map((f) => f.view),
    options,
  );
  const revision = snapshot.revision;
  // The template rendered once around one stand-in tenant whose parts are marks, then cut there:
  // what surrounds the tenants is one piece each, and each tenant's part (with the line end the
  // template gives it) is a piece of its own, the same string from one build to the next.
  const text = mainTemplate({
    node: { name: node.name, revision },
    main,
    fragments: [{ http: HTTP_MARK, stream: main.hasStream ? STREAM_MARK : '' }],
  });
  const [head = '', afterHttp = ''] = text.split(`${HTTP_MARK}\n`);
  const [middle = '', tail = ''] = main.hasStream ? afterHttp.split(`${STREAM_MARK}\n`) : [afterHttp, ''];
  if (text.split(HTTP_MARK).length !== 2 || (main.hasStream && afterHttp.split(STREAM_MARK).length !== 2)) {
    throw new Error('templates/nginx/nginx.hbs must place each tenant part on a line of its own, once per section');
  }
  const config: string[] = [head];
  for (const f of fragments) if (f.pieces.http !== '') config.push(f.pieces.http);
  config.push(middle);
  if (main.hasStream) for (const f of fragments) if (f.pieces.stream !== '') config.push(f.pieces.stream);
  if (tail !== '') config.push(tail);
  const files: Record<string, readonly string[]> = {
    [NGINX_FILES.config]: config.filter((piece) => piece !== ''),
    // Each tenant's lines are a piece of their own. Revision 0: the file seeds what the node
    // does not hold (a start, a new upstream); what the channel pushed since is newer and stays.
    [NGINX_FILES.runtimeState]: [
      `${JSON.stringify({ complete: true, revision: 0 })}\n`,
      ...fragments.map((f) => f.runtime.lines),
    ],
  };
  for (const [name, content] of Object.entries(LUA_MODULE_FILES)) files[name] = [content];
  if (main.runtimeChannel !== null)
    for (const [name, content] of Object.entries(runtimeTlsFiles(snapshot.node))) files[name] = [content];
  for (const fragment of fragments)
    for (const [name, content] of Object.entries(fragment.files)) files[name] = [content];
  return Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Two VIPs on one address and port would share a listening socket: nginx would then pick a
 * server by Host (or turn TLS on for both), so one tenant could receive another's traffic, and
 * an http and a tcp VIP there could not both bind. Refused, as the HAProxy renderer does.
 */
const checkedListeners = new CheckedListeners<NginxTenantFragment>(16, (a, b) => {
  const x = a.view.listeners;
  const y = b.view.listeners;
  return x === y || (x.length === y.length && x.every((l, j) => l.endpoint === y[j]!.endpoint && l.vip === y[j]!.vip));
});

function checkListenersNow(fragments: readonly NginxTenantFragment[]): void {
  const owners = new Map<string, string>();
  const issues: { path: string; message: string }[] = [];
  for (const fragment of fragments) {
    for (const { endpoint, vip } of fragment.view.listeners) {
      const owner = owners.get(endpoint);
      if (owner !== undefined)
        issues.push({
          path: `tenant ${fragment.tenant}`,
          message: `vip ${vip} listens on ${endpoint}, already used by vip ${owner}`,
        });
      else owners.set(endpoint, vip);
    }
  }
  if (issues.length > 0)
    throw new ValidationError(`listener conflict: ${issues.map((i) => i.message).join('; ')}`, issues);
}

/** One flat string (see the note on `flat` in render/haproxy.ts): kept in the fragment cache, a rope would be copied by every GC. */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}
