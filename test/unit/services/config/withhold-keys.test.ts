import { describe, expect, it } from 'vitest';
import { withholdKeys } from '../../../../src/services/config/withhold-keys.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('withholdKeys', () => {
  it('when a file holds private keys of any kind, then each is replaced by a comment and the certificates stay', () => {
    const files = {
      'certs/a.pem': `${CERT}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`,
      'certs/b.pem': `-----BEGIN EC PRIVATE KEY-----\nBBBB\n-----END EC PRIVATE KEY-----\n${CERT}`,
      'haproxy.cfg': 'global\n  maxconn 100\n',
    };
    expect(withholdKeys(files)).toEqual({
      'certs/a.pem': `${CERT}# private key withheld\n`,
      'certs/b.pem': `# private key withheld\n${CERT}`,
      'haproxy.cfg': 'global\n  maxconn 100\n',
    });
  });

  it('when a BEGIN line has no matching END, then the text is left as it is (no partial cut)', () => {
    const broken = '-----BEGIN RSA PRIVATE KEY-----\nCCCC\n-----END EC PRIVATE KEY-----\n';
    expect(withholdKeys({ 'x.pem': broken })).toEqual({ 'x.pem': broken });
  });
});
