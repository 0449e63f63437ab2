import { ValidationError } from '../domain/errors.js';
import {
  joinSegments,
  type NodeSnapshot,
  type RenderedFiles,
  type SegmentedFiles,
  type TenantSnapshot,
} from '../domain/snapshot.js';
import { HAPROXY_FILES, formatEndpoint } from './haproxy-names.js';
import {
  haproxyNodeSettings,
  toHaproxyTenantView,
  toHaproxyNodeView,
  runtimeTlsFiles,
  type HaproxyTenantView,
} from './haproxy-view.js';
import { loadTemplates } from './templates.js';
import { AMBIGUOUS_PATH_REGEX } from './request-rules.js';
import { FragmentLists } from './fragment-lists.js';
import { CheckedListeners } from './checked-listeners.js';

const templates = loadTemplates('haproxy');

function template(name: string): HandlebarsTemplateDelegate {
  const compiled = templates.get(name);
  if (compiled === undefined) throw new Error(`templates/haproxy/${name}.hbs is missing`);
  return compiled;
}

const tenantTemplate = template('tenant');
const mainTemplate = template('haproxy');
const capEntryTemplate = template('cap-entry');
const crtListTemplate = template('crt-list');
const certificateTemplate = template('certificate');

/** A tenant's rendered part: its frontends and backends, its map line and its own files. */
export interface HaproxyTenantFragment {
  readonly tenant: string;
  readonly config: string;
  /** The tenant's lines of `maps/tenant-caps.map`. */
  readonly caps: string;
  /** `[ip:port, frontend]` pairs, to refuse two tenants listening on one address. */
  readonly binds: readonly (readonly [string, string])[];
  readonly files: Readonly<Record<string, string>>;
}

/**
 * Fragments are memoised per tenant object and configDir: snapshots are immutable values, so an
 * unchanged tenant (the same object in the next snapshot) is not rendered again. Nodes whose caps
 * for a tenant agree share its snapshot, so a few configDirs are kept per tenant (one per such
 * node); validations render for scratch directories without the cache (`renderHaproxyOnce`).
 */
const fragmentCache = new WeakMap<TenantSnapshot, Map<string, HaproxyTenantFragment>>();
const CONFIG_DIRS_PER_TENANT = 4;

/**
 * Renders a node's whole HAProxy configuration: `haproxy.cfg`, `maps/tenant-caps.map`, and per
 * https VIP its certificate files and crt-list, keyed by path relative to `node.configDir` (which
 * every file reference points into). Throws `UnsafeValueError` for a value the guard refuses and
 * `ValidationError` for a snapshot that cannot be rendered (dangling reference, shared listener),
 * always before any content is returned.
 */
export function renderHaproxy(snapshot: NodeSnapshot): RenderedFiles {
  return joinSegments(renderHaproxySegments(snapshot));
}

/** `renderHaproxy` before the join: each tenant's part of each file a piece of its own. */
export function renderHaproxySegments(snapshot: NodeSnapshot): SegmentedFiles {
  const { configDir } = haproxyNodeSettings(snapshot.node);
  const sorted = [...snapshot.tenants].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const fragments = fragmentLists.of(sorted, configDir);
  return assembleHaproxySegments(snapshot, fragments);
}

/**
 * `renderHaproxy` for a scratch directory used once (a validation): nothing is kept in the
 * fragment cache, which then holds only the directories of nodes (a scratch render would take a
 * node's place, and hold memory for a directory that is deleted right after).
 */
export function renderHaproxyOnce(snapshot: NodeSnapshot): RenderedFiles {
  const { configDir } = haproxyNodeSettings(snapshot.node);
  const fragments = [...snapshot.tenants]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((tenant) => fragmentCache.get(tenant)?.get(configDir) ?? fragmentOf(toHaproxyTenantView(tenant, configDir)));
  return joinSegments(assembleHaproxySegments(snapshot, fragments, { once: true }));
}

/** Whole nodes' fragments, lined up with the last render for the same directory. */
const fragmentLists = new FragmentLists(renderHaproxyTenant);

/** One tenant's part alone: what a preview shows, and what a node holds back when it fails. */
export function renderHaproxyTenant(tenant: TenantSnapshot, configDir: string): HaproxyTenantFragment {
  let byDir = fragmentCache.get(tenant);
  const cached = byDir?.get(configDir);
  if (cached !== undefined) return cached;
  const fragment = fragmentOf(toHaproxyTenantView(tenant, configDir));
  if (byDir === undefined) fragmentCache.set(tenant, (byDir = new Map()));
  if (byDir.size >= CONFIG_DIRS_PER_TENANT) byDir.delete(byDir.keys().next().value!);
  byDir.set(configDir, fragment);
  return fragment;
}

/**
 * Joins tenant fragments (in the order given: sorted by tenant for a deterministic file) under
 * the node's global and defaults sections. `renderHaproxy` calls it; a caller holding one tenant
 * at its last good fragment calls it directly with that fragment in the tenant's place.
 */
export function assembleHaproxy(snapshot: NodeSnapshot, fragments: readonly HaproxyTenantFragment[]): RenderedFiles {
  return joinSegments(assembleHaproxySegments(snapshot, fragments));
}

/** Marks where the tenants go in the main template's output, which is split there. */
const TENANTS_MARK = '\u0000switchyard-tenants\u0000';

export function assembleHaproxySegments(
  snapshot: NodeSnapshot,
  fragments: readonly HaproxyTenantFragment[],
  opts: { once?: boolean } = {},
): SegmentedFiles {
  const view = toHaproxyNodeView(snapshot);
  checkTenantsUnique(fragments);
  // A directory rendered once is not remembered as checked: it would push out a node's.
  if (opts.once === true) checkListenersNow(snapshot, fragments);
  else checkListeners(snapshot, fragments);
  // The guard refuses NUL in every rendered value, so the mark cannot come from a tenant.
  const [head = '', tail = '', ...rest] = mainTemplate({ ...view, tenants: TENANTS_MARK }).split(TENANTS_MARK);
  if (rest.length > 0) throw new Error('templates/haproxy/haproxy.hbs must place {{tenants}} exactly once');
  const config = [head];
  for (const f of fragments) if (f.config !== '') config.push(f.config);
  if (tail !== '') config.push(tail);
  const files: Record<string, readonly string[]> = {
    [HAPROXY_FILES.config]: config,
    [HAPROXY_FILES.capsMap]: fragments.map((f) => f.caps).filter((c) => c !== ''),
    [HAPROXY_FILES.ambiguousPath]: [`${AMBIGUOUS_PATH_REGEX}\n`],
  };
  for (const [name, content] of Object.entries(runtimeTlsFiles(snapshot.node))) files[name] = [content];
  for (const fragment of fragments)
    for (const [name, content] of Object.entries(fragment.files)) files[name] = [content];
  return sortKeys(files);
}

function fragmentOf(view: HaproxyTenantView): HaproxyTenantFragment {
  const files: Record<string, string> = {};
  for (const cert of view.certificates) files[cert.file] = certificateTemplate(cert);
  for (const list of view.crtLists) files[list.file] = crtListTemplate(list);
  for (const { file, content } of view.memberTlsFiles) files[file] = content;
  return {
    tenant: view.id,
    config: flat(tenantTemplate(view)),
    caps: view.caps.map((entry) => capEntryTemplate(entry)).join(''),
    binds: view.frontends.map((f) => [f.bind, f.name] as const),
    files,
  };
}

function checkTenantsUnique(fragments: readonly HaproxyTenantFragment[]): void {
  // Sorted by tenant (as renders give them): unique when each id is above the one before.
  let sorted = true;
  for (let i = 1; i < fragments.length && sorted; i++) sorted = fragments[i - 1]!.tenant < fragments[i]!.tenant;
  if (sorted) return;
  const seen = new Set<string>();
  for (const { tenant } of fragments) {
    if (seen.has(tenant))
      throw new ValidationError(`tenant ${tenant} appears twice`, [
        { path: `tenant ${tenant}`, message: 'appears twice' },
      ]);
    seen.add(tenant);
  }
}

/**
 * HAProxy binds with SO_REUSEPORT, so two frontends on one address and port would both start and
 * split the connections between two tenants; `haproxy -c` does not bind and cannot see it.
 */
function checkListeners(snapshot: NodeSnapshot, fragments: readonly HaproxyTenantFragment[]): void {
  const key = `${snapshot.node.configDir}\0${[...nodeListeners(snapshot)].map(([bind]) => bind).join('\0')}`;
  checkedListeners.check(key, fragments, (f) => checkListenersNow(snapshot, f));
}

/** Per config directory and the node's own listeners (Runtime API, master CLI). */
const checkedListeners = new CheckedListeners<HaproxyTenantFragment>(
  8,
  (a, b) =>
    a.binds === b.binds ||
    (a.binds.length === b.binds.length &&
      a.binds.every(([bind, name], j) => bind === b.binds[j]![0] && name === b.binds[j]![1])),
);

function checkListenersNow(snapshot: NodeSnapshot, fragments: readonly HaproxyTenantFragment[]): void {
  const owners = nodeListeners(snapshot);
  const issues: { path: string; message: string }[] = [];
  for (const fragment of fragments) {
    for (const [bind, frontend] of fragment.binds) {
      const owner = owners.get(bind);
      if (owner !== undefined)
        issues.push({
          path: `tenant ${fragment.tenant}`,
          message: `${frontend} listens on ${bind}, already used by ${owner}`,
        });
      else owners.set(bind, frontend);
    }
  }
  if (issues.length > 0)
    throw new ValidationError(`listener conflict: ${issues.map((i) => i.message).join('; ')}`, issues);
}

/** The node's own listeners (Runtime API, master CLI), which no tenant may share. */
function nodeListeners(snapshot: NodeSnapshot): Map<string, string> {
  const owners = new Map<string, string>();
  const { runtimeAddress, masterAddress } = snapshot.node;
  if (runtimeAddress !== null) owners.set(formatEndpoint(runtimeAddress.host, runtimeAddress.port), 'the Runtime API');
  if (masterAddress !== undefined && masterAddress !== null)
    owners.set(formatEndpoint(masterAddress.host, masterAddress.port), 'the master CLI');
  return owners;
}

function sortKeys<T>(files: Record<string, T>): Readonly<Record<string, T>> {
  return Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Handlebars returns a rope of many small strings; kept in the fragment cache, each piece would be
 * copied by every young-generation GC. Reading a character makes V8 flatten it into one string
 * (about half of a 10,000-tenant render's time was that copying).
 */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}
