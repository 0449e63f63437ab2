import * as arg from './argument-guards.js';
import { runtimeCommand, type RuntimeCommand } from './runtime-command.js';

/** Commands on the certificates `crt` lines load: read one, or replace it in a transaction. */

/** `show ssl cert <file>`: the certificate a `crt` line loaded (serial, validity, SHA-1 fingerprint). */
export function showSslCert(certFile: string): RuntimeCommand {
  const path = arg.file('certFile', certFile);
  return runtimeCommand('show-ssl-cert', `show ssl cert ${path}`, `read certificate ${path}`);
}

/** Opens (or updates) a transaction replacing a certificate used by a `crt` line; commitSslCert applies it. */
export function setSslCert(certFile: string, pemText: string): RuntimeCommand {
  const path = arg.file('certFile', certFile);
  return runtimeCommand(
    'set-ssl-cert',
    `set ssl cert ${path} <<`,
    `stage a new certificate for ${path}`,
    arg.pem('pem', pemText),
  );
}

export function commitSslCert(certFile: string): RuntimeCommand {
  const path = arg.file('certFile', certFile);
  return runtimeCommand('commit-ssl-cert', `commit ssl cert ${path}`, `commit the staged certificate for ${path}`);
}

export function abortSslCert(certFile: string): RuntimeCommand {
  const path = arg.file('certFile', certFile);
  return runtimeCommand('abort-ssl-cert', `abort ssl cert ${path}`, `abort the staged certificate for ${path}`);
}
