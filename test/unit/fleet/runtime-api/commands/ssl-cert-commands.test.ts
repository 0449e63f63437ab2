import { describe, expect, it } from 'vitest';
import { encodeCommand, UnsafeArgumentError } from '../../../../../src/fleet/runtime-api/commands/runtime-command.js';
import {
  abortSslCert,
  commitSslCert,
  setSslCert,
} from '../../../../../src/fleet/runtime-api/commands/ssl-cert-commands.js';

const PEM = [
  '-----BEGIN CERTIFICATE-----',
  'MIIBszCCAVmgAwIBAgIUe3',
  'AbCd+/==',
  '-----END CERTIFICATE-----',
  '-----BEGIN PRIVATE KEY-----',
  'MIGHAgEAMBMGByqGSM49',
  '-----END PRIVATE KEY-----',
].join('\n');

describe('certificate command builders', () => {
  it('send a certificate as a << payload ended by an empty line', () => {
    const set = setSslCert('/etc/haproxy/certs/t1.pem', `${PEM}\n\n`);
    expect(set.line).toBe('set ssl cert /etc/haproxy/certs/t1.pem <<');
    expect(set.payload).toBe(PEM);
    expect(encodeCommand(set)).toBe(`set ssl cert /etc/haproxy/certs/t1.pem <<\n${PEM}\n\n`);
    expect(commitSslCert('/etc/haproxy/certs/t1.pem').line).toBe('commit ssl cert /etc/haproxy/certs/t1.pem');
    expect(abortSslCert('/etc/haproxy/certs/t1.pem').line).toBe('abort ssl cert /etc/haproxy/certs/t1.pem');
  });

  it('refuse PEM text with an empty line, CR, or anything but PEM blocks', () => {
    const refuses = (build: () => unknown): void => expect(build).toThrow(UnsafeArgumentError);
    refuses(() => setSslCert('/c.pem', PEM.replace('\n-----BEGIN PRIVATE', '\n\n-----BEGIN PRIVATE')));
    refuses(() => setSslCert('/c.pem', PEM.replace(/\n/g, '\r\n')));
    refuses(() => setSslCert('/c.pem', `${PEM}\nshow info`));
    refuses(() => setSslCert('/c.pem', ''));
    refuses(() => setSslCert('c.pem', PEM));
  });
});
