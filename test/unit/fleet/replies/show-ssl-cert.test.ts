import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseShowSslCert } from '../../../../src/fleet/replies/show-ssl-cert.js';

/** Replies captured from HAProxy 2.6.12 on this machine (see test/fixtures/runtime). */
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/runtime/${name}`, import.meta.url), 'utf8');

describe('show ssl cert', () => {
  it('reads the file name, serial and SHA-1 fingerprint', () => {
    const text = fixture('seed/show-ssl-cert.txt');
    expect(parseShowSslCert(text)).toMatchObject({
      file: '/etc/haproxy/switchyard/certs/b/b-example.pem',
      serial: '55CCD1D69216AEB7F42364A167386D3FABE54CD8',
      sha1: 'DA7BC0EE2949FAD8FE5BF5BF0A131761653FFBF3',
    });
  });
});
