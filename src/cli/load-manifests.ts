import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createCaBundleSchema, parseCaBundle } from '../domain/ca-bundle.js';
import { createCertificateSchema, CertificateError, parseCertificateBundle } from '../domain/certificate.js';
import { parseManifests, type ManifestIssue, type TenantManifest } from './manifest.js';

/** A certificate read from its files and parsed as the server will parse it. */
export interface LoadedCertificate {
  readonly name: string;
  readonly certificate: string;
  readonly privateKey: string;
  /** Of the leaf, as the API reports it (`AB:CD:…`): equal means the server already holds this chain. */
  readonly fingerprintSha256: string;
  readonly sans: readonly string[];
}

/** A CA bundle read from its file and parsed as the server will parse it. */
export interface LoadedCaBundle {
  readonly name: string;
  readonly certificates: string;
  /** Of each certificate, in order, as the API reports them: equal means the server already holds these. */
  readonly fingerprints: readonly string[];
}

export interface DesiredTenant extends Omit<TenantManifest, 'certificates' | 'caBundles'> {
  readonly certificates: readonly LoadedCertificate[];
  readonly caBundles: readonly LoadedCaBundle[];
  /** SHA-256 of the file the tenant came from, part of its Idempotency-Keys. */
  readonly fileHash: string;
}

export interface LoadedManifests {
  readonly files: readonly string[];
  readonly tenants: readonly DesiredTenant[];
  readonly issues: readonly ManifestIssue[];
}

const YAML_FILE = /\.ya?ml$/i;

/**
 * Reads every manifest named by `paths` (files, or directories whose *.yaml / *.yml files are read
 * in name order, not recursively), validates every document and reads the certificate files they
 * reference. Returns every issue found; nothing may be applied unless `issues` is empty.
 */
export async function loadManifests(paths: readonly string[]): Promise<LoadedManifests> {
  const issues: ManifestIssue[] = [];
  const files: string[] = [];
  for (const path of paths) files.push(...(await expand(path, issues)));
  const tenants: DesiredTenant[] = [];
  const seen = new Map<string, TenantManifest>();
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      issues.push({ source: { file, index: null }, path: '', message: `cannot read the file: ${reason(err)}` });
      continue;
    }
    const parsed = parseManifests(file, text);
    issues.push(...parsed.issues);
    const fileHash = createHash('sha256').update(text).digest('hex');
    for (const manifest of parsed.tenants) {
      const first = seen.get(manifest.id);
      if (first) {
        const where = `${first.source.file}[${first.source.index}]`;
        issues.push({
          source: manifest.source,
          path: 'metadata.name',
          message: `tenant "${manifest.id}" is also declared in ${where}; declare each tenant once`,
        });
        continue;
      }
      seen.set(manifest.id, manifest);
      const certificates = await loadCertificates(manifest, issues);
      const caBundles = await loadCaBundles(manifest, issues);
      if (certificates && caBundles) tenants.push({ ...manifest, certificates, caBundles, fileHash });
    }
  }
  if (files.length > 0 && tenants.length === 0 && issues.length === 0) {
    issues.push({
      source: { file: paths.join(', '), index: null },
      path: '',
      message: `no tenant documents found (apiVersion: switchyard/v1, kind: Tenant)`,
    });
  }
  return { files, tenants, issues };
}

async function expand(path: string, issues: ManifestIssue[]): Promise<string[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    issues.push({ source: { file: path, index: null }, path: '', message: `cannot read: ${reason(err)}` });
    return [];
  }
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path, { withFileTypes: true }))
    .filter((e) => e.isFile() && YAML_FILE.test(e.name))
    .map((e) => e.name)
    .sort();
  if (names.length === 0)
    issues.push({
      source: { file: path, index: null },
      path: '',
      message: 'the directory holds no *.yaml or *.yml files',
    });
  return names.map((name) => join(path, name));
}

async function loadCertificates(
  manifest: TenantManifest,
  issues: ManifestIssue[],
): Promise<LoadedCertificate[] | null> {
  const out: LoadedCertificate[] = [];
  let ok = true;
  for (const [i, ref] of manifest.certificates.entries()) {
    const at = `spec.certificates[${i}]`;
    const report = (field: string, message: string) => {
      ok = false;
      issues.push({ source: manifest.source, path: `${at}.${field}`, message });
    };
    const certificate = await readPem(ref.certificateFile, (m) => report('certificateFile', m));
    const privateKey = await readPem(ref.privateKeyFile, (m) => report('privateKeyFile', m));
    if (certificate === null || privateKey === null) continue;
    const sized = createCertificateSchema.safeParse({ name: ref.name, certificate, privateKey });
    if (!sized.success) {
      for (const issue of sized.error.issues)
        report(issue.path[0] === 'privateKey' ? 'privateKeyFile' : 'certificateFile', issue.message);
      continue;
    }
    try {
      // The server's own parser: the same fingerprint, SANs and checks (chain order, key match, expiry).
      const parsed = parseCertificateBundle(certificate, privateKey, new Date());
      out.push({
        name: ref.name,
        certificate,
        privateKey,
        fingerprintSha256: parsed.fingerprintSha256,
        sans: parsed.sans,
      });
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err;
      report(
        err.field === 'privateKey' ? 'privateKeyFile' : 'certificateFile',
        `${display(err.field === 'privateKey' ? ref.privateKeyFile : ref.certificateFile)}: ${err.message}`,
      );
    }
  }
  return ok ? out : null;
}

async function loadCaBundles(manifest: TenantManifest, issues: ManifestIssue[]): Promise<LoadedCaBundle[] | null> {
  const out: LoadedCaBundle[] = [];
  let ok = true;
  for (const [i, ref] of manifest.caBundles.entries()) {
    const report = (message: string) => {
      ok = false;
      issues.push({ source: manifest.source, path: `spec.caBundles[${i}].certificatesFile`, message });
    };
    const certificates = await readPem(ref.certificatesFile, report);
    if (certificates === null) continue;
    const sized = createCaBundleSchema.safeParse({ name: ref.name, certificates });
    if (!sized.success) {
      for (const issue of sized.error.issues) report(issue.message);
      continue;
    }
    try {
      const parsed = parseCaBundle(certificates, new Date());
      out.push({ name: ref.name, certificates, fingerprints: parsed.entries.map((e) => e.fingerprintSha256) });
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err;
      report(`${display(ref.certificatesFile)}: ${err.message}`);
    }
  }
  return ok ? out : null;
}

async function readPem(file: string, report: (message: string) => void): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    report(`cannot read ${display(file)}: ${reason(err)} (paths are relative to the YAML file)`);
    return null;
  }
}

function display(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

function reason(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return (err as Error).message;
}
