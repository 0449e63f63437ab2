import { X509Certificate } from 'node:crypto';
import type { ProxyNode } from '../domain/node.js';
import {
  CONTROL_PLANE_SUBJECT,
  nodeSubject,
  renewalReason,
  type CertificateSubject,
  type RuntimeTlsMaterial,
} from '../domain/runtime-tls.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/fleet-pki-repository.js';
import * as nodes from '../db/node-repository.js';
import { checkCaMaterial, createCa, issue, OpensslError, type CaMaterial } from '../pki/openssl-ca.js';
import type { Logger } from '../logger.js';
import { mutate, type WriteContext } from './mutation.js';
import { SecretBox } from './secret-box.js';

export interface FleetPkiOptions {
  /** Lifetime of node and control-plane certificates (days); renewed in their last third. */
  readonly certificateDays: number;
  /** Lifetime of a generated CA (days). */
  readonly caDays: number;
  /** A CA to issue from instead of a generated one (SWITCHYARD_RUNTIME_CA_CERT / _KEY). */
  readonly supplied?: CaMaterial | undefined;
  readonly logger: Logger;
  readonly now?: () => Date;
}

/** The control plane's credentials for the Runtime API: its client certificate and the CAs it trusts nodes of. */
export interface ClientCredentials {
  readonly certificatePem: string;
  readonly keyPem: string;
  readonly caBundlePem: string;
  /** The serial of the client certificate, to tell a renewal apart. */
  readonly serial: string;
}

export interface RenewalOutcome {
  /** Subjects issued a new certificate, with why. */
  readonly renewed: readonly { readonly subject: string; readonly reason: string }[];
}

/** What the renewal job writes as: the system, not a token. */
export const PKI_ACTOR: WriteContext = {
  actor: {
    principal: { tokenId: '', name: 'runtime-pki', role: 'admin', tenantId: null, nodeName: null },
    requestId: 'runtime-pki',
    sourceIp: null,
  },
};

type IssuedRow = repo.CertificateRow;

const sealContext = (subject: string): string => `fleet-certificate:${subject}`;
const caSealContext = (fingerprint: string): string => `fleet-ca:${fingerprint}`;

/**
 * Switchyard's CA for the Runtime API's mutual TLS: it issues each HAProxy node the certificate
 * its mTLS listener presents (at registration, and again when its addresses change), and the
 * control plane the client certificate it connects with; it renews both in the last third of
 * their lifetime. Keys are sealed in PostgreSQL like tenants' certificate keys. A renewed node
 * certificate changes the node's files but not their structure: the reconciler swaps it in with
 * `set ssl cert` (no reload), and the control plane's open connections stay up.
 */
export class FleetPki {
  private readonly box: SecretBox;
  private readonly now: () => Date;

  constructor(
    private readonly db: Db,
    secretKey: Buffer,
    private readonly options: FleetPkiOptions,
  ) {
    this.box = new SecretBox(secretKey);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Makes sure a CA issues: the supplied one (stored the first time it is seen, and then the
   * issuing one; earlier CAs stay trusted until they expire), else the newest stored, else a new
   * one. Safe when several replicas start at once (an advisory lock).
   */
  async ensureCa(): Promise<void> {
    const supplied = this.options.supplied;
    if (supplied !== undefined) checkSupplied(supplied);
    await this.db.transaction().execute(async (trx) => {
      await repo.lockCa(trx);
      if (supplied !== undefined) {
        const fingerprint = fingerprintOf(supplied.certificatePem);
        if ((await repo.findCaByFingerprint(trx, fingerprint)) !== undefined) return;
        await this.storeCa(trx, supplied, 'supplied');
        this.options.logger.info({ fingerprint }, 'stored the supplied Runtime API CA; it issues from now on');
        return;
      }
      if ((await repo.issuingCa(trx)) !== undefined) return;
      const generated = await createCa('Switchyard Runtime API CA', this.options.caDays, this.now());
      await this.storeCa(trx, generated, 'generated');
      this.options.logger.info(
        { fingerprint: fingerprintOf(generated.certificatePem) },
        'generated the Runtime API CA',
      );
    });
  }

  /**
   * Issues the node its certificate inside the caller's transaction (a registration or an
   * address change), unless the one it has still fits. Nodes without a listener (a HAProxy Runtime
   * API or master CLI, an NGINX runtime channel) get none.
   */
  async issueForNode(trx: Db, node: ProxyNode): Promise<void> {
    const subject = nodeSubject(node);
    if (subject.ips.length === 0) return;
    const ca = await this.requireIssuingCa(trx);
    const key = repo.nodeSubjectKey(node.name);
    const current = await repo.findCertificate(trx, key);
    if (renewalReason(current === undefined ? null : issuedOf(current), subject, ca.id, this.now()) === null) return;
    await this.issueTo(trx, ca, key, node.name, subject);
  }

  /**
   * Renews what is due: every listening node's certificate (missing, expiring, from an old CA, or
   * naming old addresses) in one write that bumps the revision, so each node's config is rebuilt
   * with it; then the control plane's client certificate, which moves to a new CA only once every
   * node runs a config that trusts it (else they would refuse it). `at` is when to judge what
   * is due (default: now).
   */
  async renewDue(at?: Date): Promise<RenewalOutcome> {
    // `at` decides what is due (a test looks ahead); certificates are always issued from now.
    const now = at ?? this.now();
    const ca = await this.requireIssuingCa(this.db);
    const stored = new Map((await repo.listCertificates(this.db)).map((c) => [c.subject, c]));
    // Issued before the write: openssl's time is not spent holding the revision lock.
    const due: { node: string; key: string; reason: string; before: string | null; issued: IssuedRow }[] = [];
    for (const node of await allNodes(this.db)) {
      const subject = nodeSubject(node);
      if (subject.ips.length === 0) continue;
      const key = repo.nodeSubjectKey(node.name);
      const current = stored.get(key);
      const reason = renewalReason(current === undefined ? null : issuedOf(current), subject, ca.id, now);
      if (reason !== null)
        due.push({
          node: node.name,
          key,
          reason,
          before: current?.serial ?? null,
          issued: await this.issueRow(ca, key, node.name, subject),
        });
    }
    const renewed: { subject: string; reason: string }[] = [];
    if (due.length > 0) {
      await mutate(this.db, PKI_ACTOR, async (tx) => {
        for (const d of due) {
          await repo.saveCertificate(tx.db, d.issued);
          renewed.push({ subject: d.key, reason: d.reason });
          tx.audit({
            action: 'update',
            resourceType: 'node-certificate',
            resourceId: d.node,
            tenantId: null,
            before: d.before === null ? null : { serial: d.before },
            after: { serial: d.issued.serial, reason: d.reason },
          });
        }
      });
    }
    const client = await this.renewClient(now);
    if (client !== null) renewed.push(client);
    for (const r of renewed) this.options.logger.info(r, 'issued a Runtime API certificate');
    return { renewed };
  }

  /** The node's certificate, key and trusted CAs, or null when it has none (no listener is then rendered). */
  async nodeMaterial(nodeName: string): Promise<RuntimeTlsMaterial | null> {
    const [cert, cas] = await Promise.all([
      repo.findCertificate(this.db, repo.nodeSubjectKey(nodeName)),
      repo.trustedCas(this.db, this.now()),
    ]);
    if (cert === undefined || cas.length === 0) return null;
    return {
      certificatePem: cert.cert_pem,
      keyPem: this.box.open(cert.key_sealed, sealContext(cert.subject)),
      caBundlePem: bundle(cas),
    };
  }

  /** The control plane's client credentials, or null before the first is issued. */
  async clientCredentials(): Promise<ClientCredentials | null> {
    const [cert, cas] = await Promise.all([
      repo.findCertificate(this.db, repo.CONTROL_PLANE),
      repo.trustedCas(this.db, this.now()),
    ]);
    if (cert === undefined || cas.length === 0) return null;
    return {
      certificatePem: cert.cert_pem,
      keyPem: this.box.open(cert.key_sealed, sealContext(cert.subject)),
      caBundlePem: bundle(cas),
      serial: cert.serial,
    };
  }

  /** The issuing CA's certificate (public), for operators checking a node by hand. */
  async caCertificate(): Promise<string | null> {
    return (await repo.issuingCa(this.db))?.cert_pem ?? null;
  }

  /** Issues the control plane's client certificate when it has none or it is due (every replica at start; idempotent). */
  async ensureClientCertificate(): Promise<void> {
    const renewed = await this.renewClient(this.now());
    if (renewed !== null) this.options.logger.info(renewed, 'issued a Runtime API certificate');
  }

  private async renewClient(now: Date): Promise<{ subject: string; reason: string } | null> {
    return this.db.transaction().execute(async (trx) => {
      await repo.lockCa(trx);
      const ca = await this.requireIssuingCa(trx);
      const current = await repo.findCertificate(trx, repo.CONTROL_PLANE);
      const reason = renewalReason(current === undefined ? null : issuedOf(current), CONTROL_PLANE_SUBJECT, ca.id, now);
      if (reason === null) return null;
      const expired = current !== undefined && current.not_after.getTime() <= now.getTime();
      // A certificate from a new CA is refused by nodes that do not trust it yet: keep the old
      // one (still valid) until they all do, unless it has run out anyway.
      if (current !== undefined && current.ca_id !== ca.id && !expired && !(await repo.everyNodeTrusts(trx, ca.id)))
        return null;
      await this.issueTo(trx, ca, repo.CONTROL_PLANE, null, CONTROL_PLANE_SUBJECT);
      return { subject: repo.CONTROL_PLANE, reason };
    });
  }

  private async issueTo(
    db: Db,
    ca: repo.StoredCa,
    key: string,
    nodeName: string | null,
    subject: CertificateSubject,
  ): Promise<string> {
    const row = await this.issueRow(ca, key, nodeName, subject);
    await repo.saveCertificate(db, row);
    return row.serial;
  }

  private async issueRow(
    ca: repo.StoredCa,
    key: string,
    nodeName: string | null,
    subject: CertificateSubject,
  ): Promise<IssuedRow> {
    const material = {
      certificatePem: ca.cert_pem,
      keyPem: this.box.open(ca.key_sealed, caSealContext(ca.fingerprint)),
    };
    const issued = await issue(material, subject, this.options.certificateDays, this.now());
    const cert = new X509Certificate(issued.certificatePem);
    return {
      subject: key,
      nodeName,
      caId: ca.id,
      certPem: issued.certificatePem,
      keySealed: this.box.seal(issued.keyPem, sealContext(key)),
      serial: cert.serialNumber,
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(cert.validTo),
      issuedAt: this.now(),
    };
  }

  private async storeCa(db: Db, ca: CaMaterial, source: 'generated' | 'supplied'): Promise<void> {
    const fingerprint = fingerprintOf(ca.certificatePem);
    await repo.insertCa(db, {
      certPem: ca.certificatePem,
      keySealed: this.box.seal(ca.keyPem, caSealContext(fingerprint)),
      fingerprint,
      source,
      notAfter: new Date(new X509Certificate(ca.certificatePem).validTo),
    });
  }

  private async requireIssuingCa(db: Db): Promise<repo.StoredCa> {
    const ca = await repo.issuingCa(db);
    if (ca === undefined)
      throw new Error('no Runtime API CA is stored yet: the control plane creates one at start (FleetPki.ensureCa)');
    return ca;
  }
}

function issuedOf(row: repo.StoredCertificate) {
  return { certificatePem: row.cert_pem, caId: row.ca_id, notBefore: row.not_before, notAfter: row.not_after };
}

/** The trusted CAs as one PEM file, the issuing (newest) first. */
function bundle(cas: readonly repo.StoredCa[]): string {
  return cas.map((c) => (c.cert_pem.endsWith('\n') ? c.cert_pem : `${c.cert_pem}\n`)).join('');
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function checkSupplied(ca: CaMaterial): void {
  try {
    checkCaMaterial(ca);
  } catch (err) {
    if (err instanceof OpensslError)
      throw new Error(
        `SWITCHYARD_RUNTIME_CA_CERT / SWITCHYARD_RUNTIME_CA_KEY: ${err.message}; supply the CA's certificate and its own key as PEM files`,
        { cause: err },
      );
    throw err;
  }
}

async function allNodes(db: Db): Promise<ProxyNode[]> {
  const out: ProxyNode[] = [];
  for (;;) {
    const page = await nodes.listNodes(db, { limit: 500, after: out.at(-1)?.name });
    out.push(...page);
    if (page.length < 500) return out;
  }
}
