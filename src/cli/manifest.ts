import { dirname, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { slug } from '../domain/fields.js';
import { PROTO_KEY_MESSAGE, protoKeyPaths } from '../domain/proto-keys.js';
import { replaceMembersSchema, type CreateMember } from '../domain/member.js';
import { createPoolSchema, type CreatePool } from '../domain/pool.js';
import { createRouteSchema, type CreateRoute } from '../domain/route.js';
import { createTenantSchema, type Resources } from '../domain/tenant.js';
import { createVipSchema, type CreateVip } from '../domain/vip.js';

export const API_VERSION = 'switchyard/v1';
export const TENANT_KIND = 'Tenant';

/** Where a tenant came from: a file and the index of the YAML document in it (from 0). */
export interface ManifestSource {
  readonly file: string;
  readonly index: number;
}

/** One thing wrong with a manifest, located down to the field: `spec.vips[0].port`. */
export interface ManifestIssue {
  /** `index` is null for a problem with the file itself (unreadable, no documents). */
  readonly source: { readonly file: string; readonly index: number | null };
  /** Field path in the document; empty for the document as a whole. */
  readonly path: string;
  readonly message: string;
}

/** A certificate by reference: the PEM files, resolved against the directory of the YAML file. */
export interface CertificateRef {
  readonly name: string;
  readonly certificateFile: string;
  readonly privateKeyFile: string;
}

/** A CA bundle by reference: the PEM file of its certificates, resolved against the YAML file's directory. */
export interface CaBundleRef {
  readonly name: string;
  readonly certificatesFile: string;
}

export type DesiredPool = CreatePool & { readonly members: CreateMember[] };
export type DesiredVip = CreateVip & { readonly routes: CreateRoute[] };

/**
 * A tenant as a manifest declares it, every object normalised by the same zod schemas the API
 * validates with (defaults filled, host names lower case, addresses canonical), so it compares
 * directly with what the API answers.
 */
export interface TenantManifest {
  readonly source: ManifestSource;
  readonly id: string;
  readonly displayName: string;
  readonly reservation: Resources;
  readonly limit: Resources;
  /** null when the manifest leaves it out: a fleet operator's knob, left as the server has it. */
  readonly weight: number | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly certificates: readonly CertificateRef[];
  readonly caBundles: readonly CaBundleRef[];
  readonly pools: readonly DesiredPool[];
  readonly vips: readonly DesiredVip[];
}

export interface ParsedManifests {
  readonly tenants: TenantManifest[];
  readonly issues: ManifestIssue[];
}

/**
 * The envelope only; each object inside is checked with its own domain schema. Loose, so that an
 * unknown key (reported by checkKnownKeys) does not hide the problems of everything else.
 */
const documentSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(TENANT_KIND),
  metadata: z.object({ name: z.unknown(), labels: z.unknown().optional() }),
  spec: z
    .object({
      displayName: z.unknown().optional(),
      reservation: z.unknown().optional(),
      limit: z.unknown().optional(),
      weight: z.unknown().optional(),
      certificates: z.array(z.unknown()).default([]),
      caBundles: z.array(z.unknown()).default([]),
      pools: z.array(z.unknown()).default([]),
      vips: z.array(z.unknown()).default([]),
    })
    .default({ certificates: [], caBundles: [], pools: [], vips: [] }),
});

const KNOWN_KEYS: readonly [string, readonly string[]][] = [
  ['', ['apiVersion', 'kind', 'metadata', 'spec']],
  ['metadata', ['name', 'labels']],
  ['spec', ['displayName', 'reservation', 'limit', 'weight', 'certificates', 'caBundles', 'pools', 'vips']],
];

const certificateRefSchema = z.strictObject({
  name: slug,
  certificateFile: z.string().min(1, 'must name the PEM file holding the certificate chain (leaf first)'),
  privateKeyFile: z.string().min(1, 'must name the PEM file holding the private key'),
});

const caBundleRefSchema = z.strictObject({
  name: slug,
  certificatesFile: z.string().min(1, 'must name the PEM file holding the CA certificates'),
});

/**
 * Parses one YAML file of tenant documents (`---` separated) and validates every object with the
 * domain schemas. Pure: certificate paths are only resolved (against the file's directory), not read.
 * Empty documents are skipped; every issue of every document is reported, not just the first.
 */
export function parseManifests(file: string, text: string): ParsedManifests {
  const tenants: TenantManifest[] = [];
  const issues: ManifestIssue[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    const source = { file, index };
    if (doc.errors.length > 0) {
      for (const error of doc.errors) issues.push({ source, path: '', message: `YAML: ${firstLine(error.message)}` });
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const found: ManifestIssue[] = [];
    const tenant = checkDocument(
      value,
      (path, message) => found.push({ source, path, message }),
      source,
      dirname(file),
    );
    issues.push(...found);
    if (tenant && found.length === 0) tenants.push(tenant);
  });
  return { tenants, issues };
}

export function formatIssue(issue: ManifestIssue): string {
  const where = issue.source.index === null ? issue.source.file : `${issue.source.file}[${issue.source.index}]`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where} ${issue.path}: ${issue.message}`;
}

type Report = (path: string, message: string) => void;

function checkDocument(value: unknown, report: Report, source: ManifestSource, baseDir: string): TenantManifest | null {
  if (typeof value !== 'object' || Array.isArray(value)) {
    report('', `a document must be a mapping with apiVersion: ${API_VERSION}, kind: ${TENANT_KIND}, metadata and spec`);
    return null;
  }
  for (const [at, keys] of KNOWN_KEYS) {
    const obj = at === '' ? value : (value as Record<string, unknown>)[at];
    if (!isRecord(obj)) continue;
    for (const key of Object.keys(obj))
      if (!keys.includes(key)) report(joinPath(at, [key]), `unknown field (expected one of ${keys.join(', ')})`);
  }
  const envelope = check(documentSchema, value, '', report);
  if (!envelope) return null;
  const { metadata, spec } = envelope;
  const tenantInput = defined({
    id: metadata.name,
    labels: metadata.labels,
    displayName: spec.displayName,
    reservation: spec.reservation,
    limit: spec.limit,
    weight: spec.weight,
  });
  const tenant = check(createTenantSchema, tenantInput, '', (path, message) => report(tenantPath(path), message));
  const certificates = spec.certificates.flatMap((raw, i) => {
    const ref = check(certificateRefSchema, raw, `spec.certificates[${i}]`, report);
    return ref
      ? [
          {
            ...ref,
            certificateFile: resolve(baseDir, ref.certificateFile),
            privateKeyFile: resolve(baseDir, ref.privateKeyFile),
          },
        ]
      : [];
  });
  const caBundles = spec.caBundles.flatMap((raw, i) => {
    const ref = check(caBundleRefSchema, raw, `spec.caBundles[${i}]`, report);
    return ref ? [{ ...ref, certificatesFile: resolve(baseDir, ref.certificatesFile) }] : [];
  });
  const pools = spec.pools.flatMap((raw, i) => checkPool(raw, `spec.pools[${i}]`, report));
  const vips = spec.vips.flatMap((raw, i) => checkVip(raw, `spec.vips[${i}]`, report));
  checkUnique(certificates, 'spec.certificates', 'certificate', report);
  checkUnique(caBundles, 'spec.caBundles', 'CA bundle', report);
  checkUnique(pools, 'spec.pools', 'pool', report);
  checkUnique(vips, 'spec.vips', 'vip', report);
  vips.forEach((vip, i) => {
    checkUnique(vip.routes, `spec.vips[${i}].routes`, 'route', report);
  });
  if (!tenant) return null;
  return {
    source,
    id: tenant.id,
    displayName: tenant.displayName,
    reservation: tenant.reservation,
    limit: tenant.limit,
    weight: tenant.weight ?? null,
    labels: tenant.labels,
    certificates,
    caBundles,
    pools,
    vips,
  };
}

function checkPool(raw: unknown, at: string, report: Report): DesiredPool[] {
  if (!isRecord(raw)) {
    report(at, 'must be a mapping (name, algorithm, healthCheck, members)');
    return [];
  }
  const { members = [], ...rest } = raw;
  const pool = check(createPoolSchema, rest, at, report);
  const set = check(replaceMembersSchema, { members }, at, report);
  return pool && set ? [{ ...pool, members: set.members }] : [];
}

function checkVip(raw: unknown, at: string, report: Report): DesiredVip[] {
  if (!isRecord(raw)) {
    report(at, 'must be a mapping (name, address or addressPool, port, protocol, ...)');
    return [];
  }
  const { routes = [], ...rest } = raw;
  const vip = check(createVipSchema, rest, at, report);
  if (!Array.isArray(routes)) {
    report(`${at}.routes`, 'must be a list of routes');
    return [];
  }
  const checked = routes.map((r, i) => check(createRouteSchema, r, `${at}.routes[${i}]`, report));
  if (!vip || checked.some((r) => r === null)) return [];
  return [{ ...vip, routes: checked as CreateRoute[] }];
}

/** Parses with a domain schema, reporting each issue at `at` + its path; null when invalid. */
function check<S extends z.ZodType>(schema: S, value: unknown, at: string, report: Report): z.output<S> | null {
  const result = schema.safeParse(value);
  const protoKeys = protoKeyPaths(value);
  for (const path of protoKeys) report(joinPath(at, path), PROTO_KEY_MESSAGE);
  if (result.success) return protoKeys.length === 0 ? result.data : null;
  for (const issue of result.error.issues) {
    const path = joinPath(at, issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys.filter((k) => k !== '__proto__')) report(joinPath(path, [key]), 'unknown field');
    } else {
      report(path, issue.message);
    }
  }
  return null;
}

function checkUnique(items: readonly { name: string }[], at: string, what: string, report: Report): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.name);
    if (first !== undefined) report(`${at}[${i}].name`, `duplicate ${what} name "${item.name}" (also ${at}[${first}])`);
    else seen.set(item.name, i);
  });
}

/** `['vips', 0, 'port']` → `vips[0].port`, appended to `at`. */
function joinPath(at: string, path: readonly PropertyKey[]): string {
  let out = at;
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  return out;
}

/** The tenant schema's fields live in two places of the document. */
function tenantPath(path: string): string {
  if (path === '') return 'spec';
  if (path === 'id') return 'metadata.name';
  if (path === 'labels' || path.startsWith('labels.')) return `metadata.${path}`;
  return `spec.${path}`;
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim().replace(/:$/, '');
}
