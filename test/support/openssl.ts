import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type KeyKind = 'rsa' | 'ec';

/** A certificate issued by the test PKI, with its key, as PEM text and as files. */
export interface Issued {
  readonly name: string;
  readonly cert: string;
  readonly key: string;
  readonly certPath: string;
  readonly keyPath: string;
}

export interface IssueOptions {
  readonly kind?: KeyKind;
  readonly sans?: readonly string[];
  /** Whether the certificate may issue others (an intermediate). */
  readonly ca?: boolean;
  /** Validity as `YYYYMMDDHHMMSSZ`; default: from an hour ago for 30 days. */
  readonly startDate?: string;
  readonly endDate?: string;
}

/**
 * A throw-away PKI built with the real `openssl` binary in a temp dir. `openssl ca` issues the
 * certificates because, unlike `x509 -req` in OpenSSL 3.0, it takes explicit start and end dates,
 * which is how an already expired certificate is made without faking the clock.
 */
export class TestPki {
  private seq = 0;

  private constructor(readonly dir: string) {}

  static async create(): Promise<TestPki> {
    return new TestPki(await mkdtemp(join(tmpdir(), 'switchyard-pki-')));
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  async key(kind: KeyKind = 'ec'): Promise<{ key: string; keyPath: string }> {
    const keyPath = this.path('key.pem');
    const args =
      kind === 'rsa'
        ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
        : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    await run('openssl', ['genpkey', ...args, '-out', keyPath]);
    return { key: await readFile(keyPath, 'utf8'), keyPath };
  }

  /** A self-signed root CA. */
  async root(name = 'Switchyard Test Root', kind: KeyKind = 'ec'): Promise<Issued> {
    const { key, keyPath } = await this.key(kind);
    const certPath = this.path('root.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      keyPath,
      '-out',
      certPath,
      '-subj',
      `/CN=${name}`,
      '-days',
      '3650',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return { name, cert: await readFile(certPath, 'utf8'), key, certPath, keyPath };
  }

  /** A certificate for `name` signed by `issuer`. */
  async issue(name: string, issuer: Issued, opts: IssueOptions = {}): Promise<Issued> {
    const { key, keyPath } = await this.key(opts.kind ?? 'ec');
    const csrPath = this.path('csr.pem');
    await run('openssl', ['req', '-new', '-key', keyPath, '-out', csrPath, '-subj', `/CN=${name}`]);
    const certPath = this.path('cert.pem');
    await run('openssl', [
      'ca',
      '-batch',
      '-notext',
      '-config',
      await this.caConfig(opts),
      '-extensions',
      'ext',
      '-cert',
      issuer.certPath,
      '-keyfile',
      issuer.keyPath,
      '-in',
      csrPath,
      '-out',
      certPath,
      '-startdate',
      opts.startDate ?? stamp(Date.now() - 3600_000),
      '-enddate',
      opts.endDate ?? stamp(Date.now() + 30 * 86400_000),
    ]);
    return { name, cert: await readFile(certPath, 'utf8'), key, certPath, keyPath };
  }

  private async caConfig(opts: IssueOptions): Promise<string> {
    const database = this.path('index.txt');
    const serial = this.path('serial');
    await writeFile(database, '');
    // Random, so two certificates of one issuer never share a serial number.
    await writeFile(serial, `01${randomBytes(8).toString('hex')}\n`);
    const ext = opts.ca
      ? ['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign']
      : ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature,keyEncipherment'];
    if (opts.sans && opts.sans.length > 0) ext.push(`subjectAltName = ${opts.sans.join(',')}`);
    const config = [
      '[ca]',
      'default_ca = issuer',
      '[issuer]',
      `database = ${database}`,
      `new_certs_dir = ${this.dir}`,
      `serial = ${serial}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '[ext]',
      ...ext,
    ].join('\n');
    const path = this.path('ca.cnf');
    await writeFile(path, `${config}\n`);
    return path;
  }

  private path(suffix: string): string {
    return join(this.dir, `${++this.seq}-${suffix}`);
  }
}

/** `openssl ca` date format. */
function stamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}/, '');
}
