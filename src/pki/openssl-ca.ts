import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateSubject } from '../domain/runtime-tls.js';

/**
 * Switchyard's own small CA, built on the `openssl` binary: Node can parse and verify X.509 but
 * not issue it, and the openssl CLI is on every host that runs HAProxy (no new dependency, and no
 * library that needs a global reflect polyfill). Keys are made in-process (P-256); openssl only
 * signs. Every run works in a private (0700) temp directory that is removed afterwards, so a CA
 * key is on disk only for the few milliseconds a signature takes.
 */

export interface CaMaterial {
  readonly certificatePem: string;
  readonly keyPem: string;
}

export interface IssuedPair {
  readonly certificatePem: string;
  readonly keyPem: string;
}

/** Certificates start this far in the past, so a node whose clock lags a little accepts them at once. */
const BACKDATE_MS = 60 * 60_000;
const OPENSSL_TIMEOUT_MS = 15_000;

/** An openssl run failed: its own message, and what to check. */
export class OpensslError extends Error {
  override readonly name = 'OpensslError';
}

/** A new self-signed CA that can issue end-entity certificates only (pathlen 0). */
export async function createCa(commonName: string, days: number, now = new Date()): Promise<CaMaterial> {
  const keyPem = newKey();
  return withScratch(async (dir) => {
    const keyPath = await put(dir, 'ca.key', keyPem);
    const csr = await csrFor(dir, keyPath, commonName);
    const config = await caConfig(dir, [
      'basicConstraints = critical,CA:TRUE,pathlen:0',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
    ]);
    const out = join(dir, 'ca.pem');
    await openssl([
      'ca',
      '-batch',
      '-notext',
      '-selfsign',
      '-config',
      config,
      '-extensions',
      'ext',
      '-keyfile',
      keyPath,
      '-in',
      csr,
      '-out',
      out,
      '-subj',
      subjectArg(commonName),
      ...dates(now, days),
    ]);
    return { certificatePem: await pemOnly(out), keyPem };
  });
}

/**
 * A certificate for `subject` with a fresh key, signed by `ca`. The extensions come from the
 * subject alone (server or client use, its names), never from a request.
 */
export async function issue(
  ca: CaMaterial,
  subject: CertificateSubject,
  days: number,
  now = new Date(),
): Promise<IssuedPair> {
  const keyPem = newKey();
  return withScratch(async (dir) => {
    const csr = await csrFor(dir, await put(dir, 'leaf.key', keyPem), subject.commonName);
    return { certificatePem: await signCsr(dir, ca, csr, subject, days, now), keyPem };
  });
}

/** Checks that `certificatePem` and `keyPem` are one CA: a CA certificate whose public key the key matches. */
export function checkCaMaterial(ca: CaMaterial): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(ca.certificatePem);
  } catch (cause) {
    throw new OpensslError('the CA certificate is not a PEM X.509 certificate', { cause });
  }
  if (!cert.ca) throw new OpensslError('the CA certificate is not a CA (basicConstraints CA:TRUE is missing)');
  let matches = false;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(ca.keyPem));
  } catch (cause) {
    throw new OpensslError('the CA key is not a PEM private key', { cause });
  }
  if (!matches) throw new OpensslError('the CA key does not belong to the CA certificate');
}

async function signCsr(
  dir: string,
  ca: CaMaterial,
  csr: string,
  subject: CertificateSubject,
  days: number,
  now: Date,
): Promise<string> {
  const caCert = await put(dir, 'issuer.pem', ca.certificatePem);
  const caKey = await put(dir, 'issuer.key', ca.keyPem);
  const names = [...subject.dns.map((d) => `DNS:${d}`), ...subject.ips.map((ip) => `IP:${ip}`)];
  const ext = [
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    `extendedKeyUsage = ${subject.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    'authorityKeyIdentifier = keyid',
    ...(names.length > 0 ? [`subjectAltName = ${names.join(',')}`] : []),
  ];
  const out = join(dir, 'leaf.pem');
  await openssl([
    'ca',
    '-batch',
    '-notext',
    '-config',
    await caConfig(dir, ext),
    '-extensions',
    'ext',
    '-cert',
    caCert,
    '-keyfile',
    caKey,
    '-in',
    csr,
    '-out',
    out,
    '-subj',
    subjectArg(subject.commonName),
    ...dates(now, days),
  ]);
  return pemOnly(out);
}

function newKey(): string {
  return generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;
}

async function csrFor(dir: string, keyPath: string, commonName: string): Promise<string> {
  const out = join(dir, 'request.csr');
  await openssl(['req', '-new', '-key', keyPath, '-subj', subjectArg(commonName), '-out', out]);
  return out;
}

/** `openssl ca` wants a database and a serial file; the serial is random so no two certificates share one. */
async function caConfig(dir: string, ext: readonly string[]): Promise<string> {
  const database = await put(dir, 'index.txt', '');
  const serial = await put(dir, 'serial', `01${randomBytes(15).toString('hex')}\n`);
  const lines = [
    '[ca]',
    'default_ca = issuer',
    '[issuer]',
    `database = ${database}`,
    `new_certs_dir = ${dir}`,
    `serial = ${serial}`,
    'default_md = sha256',
    'policy = any',
    'unique_subject = no',
    'copy_extensions = none',
    '[any]',
    'commonName = supplied',
    '[ext]',
    ...ext,
  ];
  return put(dir, 'ca.cnf', `${lines.join('\n')}\n`);
}

function dates(now: Date, days: number): string[] {
  return ['-startdate', stamp(now.getTime() - BACKDATE_MS), '-enddate', stamp(now.getTime() + days * 86_400_000)];
}

/** The common name is a slug or a fixed name: nothing that `-subj` would read as another attribute. */
function subjectArg(commonName: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(commonName))
    throw new OpensslError(`refusing an unusual common name: ${JSON.stringify(commonName)}`);
  return `/CN=${commonName}`;
}

/** `openssl ca` date format (UTC, `YYYYMMDDHHMMSSZ`). */
function stamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}/, '');
}

async function pemOnly(path: string): Promise<string> {
  const text = await readFile(path, 'utf8');
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(text);
  if (!m) throw new OpensslError(`openssl wrote no certificate to ${path}`);
  return m[0].endsWith('\n') ? m[0] : `${m[0]}\n`;
}

async function put(dir: string, name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content, { mode: 0o600 });
  return path;
}

async function withScratch<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-pki-'));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function openssl(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: OPENSSL_TIMEOUT_MS }, (error, _stdout, stderr) => {
      if (error === null) return resolve();
      const cause = error as NodeJS.ErrnoException;
      if (cause.code === 'ENOENT')
        return reject(
          new OpensslError(
            'openssl not found: the control plane issues Runtime API certificates with it; install it (Debian: apt-get install openssl)',
          ),
        );
      reject(new OpensslError(`openssl ${args[0]} failed: ${stderr.trim() || cause.message}`));
    });
  });
}
