import { describe, expect, it } from 'vitest';
import { describeBindFailure, listenersIn, newListeners } from '../../../src/fleet/config-listeners.js';

describe('listenersIn', () => {
  it('finds the addresses HAProxy binds, each once, and skips sockets that name no address', () => {
    const cfg = [
      'global',
      '    stats socket ipv4@127.0.0.1:9999 level admin',
      '    stats socket /run/switchyard/admin.sock mode 600 level admin',
      'frontend fe_a_www',
      '    bind 192.0.2.10:80',
      'frontend fe_b_www',
      '    bind [2001:DB8::1]:443 ssl crt-list /etc/switchyard/certs/b.list alpn h2,http/1.1',
      'listen runtime_api',
      '    bind ipv4@10.0.0.5:9443 ssl crt /x.pem',
      '    server local unix@/run/switchyard/admin.sock',
      'frontend fe_c_dup',
      '    bind 192.0.2.10:80',
    ].join('\n');
    expect(listenersIn('haproxy', { 'haproxy.cfg': cfg })).toEqual([
      { address: '192.0.2.10', port: 80 },
      { address: '2001:db8::1', port: 443 },
      { address: '10.0.0.5', port: 9443 },
    ]);
  });

  it('finds the addresses NGINX listens on, in http and stream servers', () => {
    const conf = [
      'http {',
      '    server {',
      '        listen 192.0.2.11:80 reuseport;',
      '    }',
      '}',
      'stream {',
      '    server {',
      '        listen [::1]:22 reuseport;',
      '    }',
      '}',
    ].join('\n');
    expect(listenersIn('nginx', { 'nginx.conf': conf })).toEqual([
      { address: '192.0.2.11', port: 80 },
      { address: '::1', port: 22 },
    ]);
  });

  it('when the running config already binds a listener, then only the new ones are probed', () => {
    const next = [
      { address: '192.0.2.1', port: 80 },
      { address: '192.0.2.2', port: 80 },
    ];
    expect(newListeners(next, [{ address: '192.0.2.1', port: 80 }])).toEqual([{ address: '192.0.2.2', port: 80 }]);
  });

  it('says what is wrong in words an operator acts on', () => {
    expect(describeBindFailure({ address: '192.0.2.2', port: 80, reason: 'in-use' })).toBe(
      'port 192.0.2.2:80 is in use on the node by another process',
    );
    expect(describeBindFailure({ address: '2001:db8::2', port: 443, reason: 'address-not-available' })).toBe(
      'address 2001:db8::2 is not configured on the node (cannot bind [2001:db8::2]:443)',
    );
  });
});
