import { describe, expect, it } from 'vitest';
import { retargetFiles, retargetText } from '../../../../src/fleet/agent/retarget-files.js';

describe('retargeting a node’s files to a scratch directory', () => {
  it('rewrites every path under configDir, wherever it stands in a line', () => {
    const files = {
      'haproxy.cfg': [
        '    server-state-file /etc/sy/state/server-state',
        '    bind 127.0.0.1:80 ssl crt-list /etc/sy/crt-lists/a/web.crt-list alpn h2',
        '    http-request set-var(txn.rl_limit) str(a),map_str_int(/etc/sy/maps/tenant-caps.map,100)',
      ].join('\n'),
      'crt-lists/a/web.crt-list': '/etc/sy/certs/a/shop.pem\n',
    };
    expect(retargetFiles(files, '/etc/sy', '/var/tmp/v1')).toEqual({
      'haproxy.cfg': [
        '    server-state-file /var/tmp/v1/state/server-state',
        '    bind 127.0.0.1:80 ssl crt-list /var/tmp/v1/crt-lists/a/web.crt-list alpn h2',
        '    http-request set-var(txn.rl_limit) str(a),map_str_int(/var/tmp/v1/maps/tenant-caps.map,100)',
      ].join('\n'),
      'crt-lists/a/web.crt-list': '/var/tmp/v1/certs/a/shop.pem\n',
    });
  });

  it('when a path only starts like configDir (a sibling, the releases directory), then it is left alone', () => {
    const text = '/etc/sy2/x /etc/sy.releases/r1/x /opt/etc/sy/x x/etc/sy/y /etc/sy';
    expect(retargetText(text, '/etc/sy', '/tmp/v')).toBe(
      '/etc/sy2/x /etc/sy.releases/r1/x /opt/etc/sy/x x/etc/sy/y /tmp/v',
    );
  });

  it('maps a validator’s message back to the paths the operator knows, trailing slashes or not', () => {
    const message = "[ALERT] parsing [/tmp/v/haproxy.cfg:12] : unable to load '/tmp/v/certs/a/c.pem'";
    expect(retargetText(message, '/tmp/v/', '/etc/sy')).toBe(
      "[ALERT] parsing [/etc/sy/haproxy.cfg:12] : unable to load '/etc/sy/certs/a/c.pem'",
    );
  });

  it('treats configDir as text, never as a pattern', () => {
    expect(retargetText('/a.b/x /aXb/x', '/a.b', '/t')).toBe('/t/x /aXb/x');
  });
});
