import tls from 'node:tls';

/** The credentials a Runtime API client presents and checks nodes against (PEM). */
export interface ClientTlsCredentials {
  readonly certificatePem: string;
  readonly keyPem: string;
  /** The CAs a node's certificate must chain to. */
  readonly caBundlePem: string;
  /** Tells two certificates apart, so an unchanged one is not loaded again. */
  readonly serial: string;
}

/** Where TCP connections to the Runtime API and master CLI get their TLS settings, at each connect. */
export interface RuntimeTls {
  /** The current context (client certificate and trusted CAs), or null before one is known. */
  secureContext(): tls.SecureContext | null;
}

/**
 * The control plane's client side of the Runtime API's mutual TLS. A renewed certificate is
 * loaded once here and used from the next connection on; connections already open keep going
 * (a client certificate is only checked at the handshake), so a renewal drops no push.
 */
export class RuntimeClientTls implements RuntimeTls {
  private context: tls.SecureContext | null = null;
  private serial: string | null = null;

  secureContext(): tls.SecureContext | null {
    return this.context;
  }

  /** Loads new credentials; returns whether they differed from the current ones. */
  update(credentials: ClientTlsCredentials): boolean {
    if (credentials.serial === this.serial) return false;
    this.context = tls.createSecureContext({
      cert: credentials.certificatePem,
      key: credentials.keyPem,
      ca: credentials.caBundlePem,
      minVersion: 'TLSv1.2',
    });
    this.serial = credentials.serial;
    return true;
  }
}
