import { NginxRuntimeError } from './nginx-runtime-error.js';
import { errorReplySchema } from './nginx-runtime-replies.js';

/**
 * What a failed call on a node's runtime channel means, in words that say what to do next: pure
 * functions of the transport error or of the status and body the node answered.
 */

/** The remedy for anything that says the node does not run the channel its config should carry. */
const APPLY_LATEST =
  "apply the node's latest configuration (it carries the runtime channel and its Lua module; that change takes a reload)";

/** Certificate checks Node.js (OpenSSL) makes of the node's certificate. */
const CERTIFICATE_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/** True for a kept-alive connection the node closed just as it was reused: worth one retry on a new one. */
export function isStaleSocketError(error: unknown): boolean {
  const e = error as { reusedSocket?: boolean; code?: string };
  return e?.reusedSocket === true && (e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'ECONNABORTED');
}

/** A connect, TLS or socket error, as a NginxRuntimeError. */
export function describeTransportError(name: string, what: string, error: unknown): NginxRuntimeError {
  const e = error as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  const detail = e?.message ?? String(error);
  const make = (failure: NginxRuntimeError['failure'], message: string) =>
    new NginxRuntimeError(failure, message, { cause: error });
  if (CERTIFICATE_CODES.has(code))
    return make(
      'tls',
      `${name} presented a certificate the control plane does not accept (${detail}): the node must serve the certificate Switchyard issued for this address; ${APPLY_LATEST}, and check that no other process answers on the node's runtimeAddress`,
    );
  if (code.startsWith('ERR_SSL_') || /handshake|alert/i.test(detail))
    return make(
      'tls',
      `the TLS handshake with ${name} failed (${detail}): the node must trust Switchyard's CA and accept its client certificate; ${APPLY_LATEST}`,
    );
  if (code === 'ECONNREFUSED')
    return make(
      'unavailable',
      `nothing listens on ${name} (connection refused): check that nginx runs on the node with the runtime channel in its config (the node's runtimeAddress); ${APPLY_LATEST}`,
    );
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'EADDRNOTAVAIL')
    return make(
      'unavailable',
      `cannot reach ${name} (${code}): check the node's runtimeAddress and the network between it and the control plane`,
    );
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return make(
      'unavailable',
      `${name} closed the connection during ${what} (${code}): nginx is restarting or stopped; the next pass tries again`,
    );
  return make('unavailable', `${what} on ${name} failed: ${detail}`);
}

/** A reply other than the one the call expects, as a NginxRuntimeError. */
export function describeStatus(name: string, what: string, status: number, text: string): NginxRuntimeError {
  const error = errorMessage(text);
  const said = error === null ? '' : `: ${error}`;
  // nginx answers a missing or unverifiable client certificate itself, with an HTML 400, before any handler.
  if (status === 403 || (status === 400 && /SSL certificate/i.test(text)))
    return new NginxRuntimeError(
      'refused',
      `${name} refused the control plane's client certificate (${status}${said || ` ${firstLine(text)}`}): the node must verify clients against Switchyard's CA (ssl_verify_client); ${APPLY_LATEST}`,
    );
  if (status === 404 || status === 405)
    return new NginxRuntimeError(
      'protocol',
      `${name} does not serve ${what} (${status}${said}): the configuration it runs predates the runtime channel, or its runtimeAddress points at another listener; ${APPLY_LATEST}`,
    );
  if (status === 400)
    return new NginxRuntimeError(
      'protocol',
      `${name} refused ${what} (400${said}): the node's Lua module and the control plane disagree on the runtime channel; ${APPLY_LATEST}`,
    );
  if (status === 507)
    return new NginxRuntimeError(
      'full',
      `a shared dictionary on ${name} is full (507${said}): nothing of the entry changed; raise the dictionary's size (lua_shared_dict), which takes a reload`,
    );
  return new NginxRuntimeError(
    'protocol',
    `${name} answered ${what} with HTTP ${status}${said || `: ${firstLine(text)}`}`,
  );
}

/** `field: message` from the channel's JSON error body, or null when the body is not one. */
function errorMessage(text: string): string | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = errorReplySchema.safeParse(json);
  if (!parsed.success) return null;
  const { field, message } = parsed.data.error;
  return (field ? `${field}: ${message}` : message).slice(0, 300);
}

/** The first meaningful line of a body (an nginx HTML page's title), bounded. */
function firstLine(text: string): string {
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
  const line = (title ?? text).trim().split('\n')[0] ?? '';
  return JSON.stringify(line.slice(0, 120));
}
