import { describe, expect, it } from 'vitest';
import * as cmd from '../../../../../src/fleet/runtime-api/commands/server-commands.js';
import { assertSendable, encodeCommand, MAX_PAYLOAD_BYTES, UnsafeArgumentError } from '../../../../../src/fleet/runtime-api/commands/runtime-command.js';

const PEM = ['-----BEGIN CERTIFICATE-----', 'MIIBszCCAVmgAwIBAgIUe3', 'AbCd+/==', '-----END CERTIFICATE-----', '-----BEGIN PRIVATE KEY-----', 'MIGHAgEAMBMGByqGSM49', '-----END PRIVATE KEY-----'].join('\n');

describe('command builders', () => {
  it('format one command line each, with a description', () => {
    expect(cmd.setServerWeight('pool_t1', 'm3', 20).line).toBe('set server pool_t1/m3 weight 20');
    expect(cmd.setServerAddr('be', 's1', '10.0.0.7', 8080).line).toBe('set server be/s1 addr 10.0.0.7 port 8080');
    expect(cmd.setServerAddr('be', 's1', '2001:DB8::1', 80).line).toBe('set server be/s1 addr 2001:db8::1 port 80');
    expect(cmd.setServerState('be', 's1', 'drain').line).toBe('set server be/s1 state drain');
    expect(cmd.setFrontendMaxconn('fe_t1', 500).line).toBe('set maxconn frontend fe_t1 500');
    expect(cmd.setServerMaxconn('be', 's1', 30).line).toBe('set maxconn server be/s1 30');
    expect(cmd.getWeight('be', 's1').line).toBe('get weight be/s1');
    expect(cmd.enableServer('be', 's1').line).toBe('enable server be/s1');
    expect(cmd.disableServer('be', 's1').line).toBe('disable server be/s1');
    expect(cmd.enableHealth('be', 's1').line).toBe('enable health be/s1');
    expect(cmd.disableHealth('be', 's1').line).toBe('disable health be/s1');
    expect(cmd.delServer('be', 's1').line).toBe('del server be/s1');
    expect(cmd.showInfo().line).toBe('show info');
    expect(cmd.setServerWeight('be', 's1', 0).description).toBe('set the weight of be/s1 to 0');
  });

  it('build frozen values that target the worker CLI, and the master CLI for show proc and reload', () => {
    const c = cmd.showInfo();
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.target).toBe('worker');
    expect(c.payload).toBeNull();
    expect(cmd.showProc()).toMatchObject({ line: 'show proc', target: 'master', kind: 'show-proc' });
    expect(cmd.reload()).toMatchObject({ line: 'reload', target: 'master', kind: 'reload' });
  });

  it('scope show stat to one proxy, by name or id, object types and server id', () => {
    expect(cmd.showStat().line).toBe('show stat');
    expect(cmd.showStat({ proxy: 'be_t1' }).line).toBe('show stat be_t1 -1 -1');
    expect(cmd.showStat({ proxy: 3, types: ['server'] }).line).toBe('show stat 3 4 -1');
    expect(cmd.showStat({ proxy: 'fe', types: ['frontend', 'backend'], serverId: 2 }).line).toBe('show stat fe 3 2');
    expect(cmd.showServersState().line).toBe('show servers state');
    expect(cmd.showServersState('be_t1').line).toBe('show servers state be_t1');
  });

  it('add a server with the same options the renderer puts on configured servers', () => {
    expect(cmd.addServer('be', 'm9', '10.0.0.9', 8080).line).toBe('add server be/m9 10.0.0.9:8080');
    expect(
      cmd.addServer('be', 'm9', '10.0.0.9', 8443, {
        weight: 50, maxconn: 100, backup: true, check: { intervalMs: 2000, rise: 2, fall: 3, port: 9000, ssl: true, sni: 'app.example.com' },
      }).line,
    ).toBe('add server be/m9 10.0.0.9:8443 weight 50 maxconn 100 backup check inter 2000 rise 2 fall 3 port 9000 check-ssl check-sni app.example.com');
    expect(cmd.addServer('be', 'm9', '::1', 80).line).toBe('add server be/m9 [::1]:80');
  });

  it('add a server of TLS members with its verification, SNI, ALPN and client certificate', () => {
    const tls = { verify: 'required', caFile: '/etc/sy/member-tls/t/ca/b.pem', sni: 'req.hdr(host),field(1,:)', alpn: 'h2,http/1.1', crt: '/etc/sy/member-tls/t/client/c.pem' } as const;
    expect(cmd.addServer('be', 'm9', '10.0.0.9', 8443, { tls, check: { intervalMs: 2000, ssl: true, sni: 'app.example.com', alpn: 'http/1.1' } }).line).toBe(
      'add server be/m9 10.0.0.9:8443 ssl verify required ca-file /etc/sy/member-tls/t/ca/b.pem sni req.hdr(host),field(1,:) alpn h2,http/1.1 crt /etc/sy/member-tls/t/client/c.pem check inter 2000 check-ssl check-sni app.example.com check-alpn http/1.1',
    );
    expect(cmd.addServer('be', 'm9', '10.0.0.9', 8443, { tls: { verify: 'required', caFile: '@system-ca', sni: 'str(api.internal)' }, check: { plain: true } }).line).toBe(
      'add server be/m9 10.0.0.9:8443 ssl verify required ca-file @system-ca sni str(api.internal) check no-check-ssl',
    );
  });

  it('refuses TLS arguments that are not what the renderer prints', () => {
    expect(() => cmd.addServer('be', 'm', '10.0.0.9', 1, { tls: { verify: 'required', sni: 'req.hdr(x-evil)' } })).toThrow(/tls.sni/);
    expect(() => cmd.addServer('be', 'm', '10.0.0.9', 1, { tls: { verify: 'required', caFile: '@other' } })).toThrow(/tls.caFile/);
    expect(() => cmd.addServer('be', 'm', '10.0.0.9', 1, { tls: { verify: 'required', alpn: 'h3' } })).toThrow(/tls.alpn/);
    expect(() => cmd.addServer('be', 'm', '10.0.0.9', 1, { tls: { verify: 'maybe' as 'none' } })).toThrow(/tls.verify/);
  });

  it('format map commands, versioned ones for atomic replacement included', () => {
    expect(cmd.addMap('/etc/haproxy/hosts.map', 'app.example.com', 'be_t1').line).toBe('add map /etc/haproxy/hosts.map app.example.com be_t1');
    expect(cmd.setMap('/etc/haproxy/rl.map', 't1', '20').line).toBe('set map /etc/haproxy/rl.map t1 20');
    expect(cmd.delMap('/etc/haproxy/rl.map', 't1').line).toBe('del map /etc/haproxy/rl.map t1');
    expect(cmd.clearMap('/m.map').line).toBe('clear map /m.map');
    expect(cmd.showMap('/m.map').line).toBe('show map /m.map');
    expect(cmd.showMap('/m.map', 4).line).toBe('show map @4 /m.map');
    expect(cmd.showMap('#2').line).toBe('show map #2');
    expect(cmd.prepareMap('/m.map').line).toBe('prepare map /m.map');
    expect(cmd.addMap('/m.map', 'k', 'v', 4).line).toBe('add map @4 /m.map k v');
    expect(cmd.commitMap('/m.map', 4).line).toBe('commit map @4 /m.map');
    const bulk = cmd.addMapEntries('/m.map', [['a', '1'], ['b', '2']], 4);
    expect(bulk.line).toBe('add map @4 /m.map <<');
    expect(bulk.payload).toBe('a 1\nb 2');
  });

  it('send a certificate as a << payload ended by an empty line', () => {
    const set = cmd.setSslCert('/etc/haproxy/certs/t1.pem', `${PEM}\n\n`);
    expect(set.line).toBe('set ssl cert /etc/haproxy/certs/t1.pem <<');
    expect(set.payload).toBe(PEM);
    expect(encodeCommand(set)).toBe(`set ssl cert /etc/haproxy/certs/t1.pem <<\n${PEM}\n\n`);
    expect(cmd.commitSslCert('/etc/haproxy/certs/t1.pem').line).toBe('commit ssl cert /etc/haproxy/certs/t1.pem');
    expect(cmd.abortSslCert('/etc/haproxy/certs/t1.pem').line).toBe('abort ssl cert /etc/haproxy/certs/t1.pem');
    expect(encodeCommand(cmd.showInfo())).toBe('show info\n');
  });
});

describe('unsafe arguments are refused before any command exists', () => {
  const refuses = (build: () => unknown): void => expect(build).toThrow(UnsafeArgumentError);

  it.each([
    ['a semicolon', 'be;shutdown sessions'],
    ['a newline', 'be\nshow info'],
    ['a carriage return', 'be\r'],
    ['a NUL', 'be\0'],
    ['a space', 'my backend'],
    ['a tab', 'be\tx'],
    ['a slash', 'be/s1'],
    ['nothing', ''],
  ])('a name with %s', (_what, value) => {
    refuses(() => cmd.setServerWeight(value, 's1', 1));
    refuses(() => cmd.setServerWeight('be', value, 1));
    refuses(() => cmd.setFrontendMaxconn(value, 1));
  });

  it('weights outside 0-256, fractions and non-numbers', () => {
    refuses(() => cmd.setServerWeight('be', 's1', 257));
    refuses(() => cmd.setServerWeight('be', 's1', -1));
    refuses(() => cmd.setServerWeight('be', 's1', 1.5));
    refuses(() => cmd.setServerWeight('be', 's1', Number.NaN));
    refuses(() => cmd.setServerWeight('be', 's1', '10' as unknown as number));
    expect(cmd.setServerWeight('be', 's1', 256).line).toContain('weight 256');
  });

  it('ports HAProxy would take but mean something else (0, relative) and bad addresses', () => {
    refuses(() => cmd.setServerAddr('be', 's1', '10.0.0.1', 0));
    refuses(() => cmd.setServerAddr('be', 's1', '10.0.0.1', 65536));
    refuses(() => cmd.setServerAddr('be', 's1', '10.0.0.1 port 1', 80));
    refuses(() => cmd.setServerAddr('be', 's1', 'app.example.com', 80));
    refuses(() => cmd.setServerAddr('be', 's1', '010.0.0.1', 80));
    refuses(() => cmd.addServer('be', 's1', '10.0.0.1', 80, { weight: 300 }));
    refuses(() => cmd.addServer('be', 's1', '10.0.0.1', 80, { check: { sni: 'x.example' } }));
    refuses(() => cmd.addServer('be', 's1', '10.0.0.1', 80, { check: { ssl: true, sni: 'x;y' } }));
  });

  it('map files, keys and values that could smuggle a second command', () => {
    refuses(() => cmd.addMap('relative.map', 'k', 'v'));
    refuses(() => cmd.addMap('/a b.map', 'k', 'v'));
    refuses(() => cmd.addMap('/etc/../m.map', 'k', 'v'));
    refuses(() => cmd.addMap('/m.map', 'k;show info', 'v'));
    refuses(() => cmd.addMap('/m.map', 'k', 'two words'));
    refuses(() => cmd.addMap('/m.map', 'k', 'v\nshow info'));
    refuses(() => cmd.addMap('/m.map', 'k\\', 'v'));
    refuses(() => cmd.addMap('/m.map', 'k', "'v'"));
    refuses(() => cmd.addMap('/m.map', 'k', ''));
    refuses(() => cmd.addMap('/m.map', 'k', 'ü'));
    refuses(() => cmd.addMapEntries('/m.map', []));
    refuses(() => cmd.addMapEntries('/m.map', [['k', 'v\n']]));
    refuses(() => cmd.commitMap('/m.map', -1));
  });

  it('PEM text with an empty line, CR, or anything but PEM blocks', () => {
    refuses(() => cmd.setSslCert('/c.pem', PEM.replace('\n-----BEGIN PRIVATE', '\n\n-----BEGIN PRIVATE')));
    refuses(() => cmd.setSslCert('/c.pem', PEM.replace(/\n/g, '\r\n')));
    refuses(() => cmd.setSslCert('/c.pem', `${PEM}\nshow info`));
    refuses(() => cmd.setSslCert('/c.pem', ''));
    refuses(() => cmd.setSslCert('c.pem', PEM));
  });

  it('the error names the argument and the rule', () => {
    try {
      cmd.setServerWeight('be', 's;1', 1);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ name: 'UnsafeArgumentError', argument: 'server', rule: expect.stringContaining('name') });
    }
  });
});

describe('assertSendable', () => {
  const base = cmd.showInfo();

  it('refuses hand-made commands that would break the framing', () => {
    expect(() => assertSendable({ ...base, line: 'show info\nshow stat' })).toThrow(UnsafeArgumentError);
    expect(() => assertSendable({ ...base, line: '  ' })).toThrow(UnsafeArgumentError);
    expect(() => assertSendable({ ...base, line: 'add map /m <<', payload: 'a 1\n\nb 2' })).toThrow(UnsafeArgumentError);
    expect(() => assertSendable({ ...base, line: 'add map /m', payload: 'a 1' })).toThrow(UnsafeArgumentError);
    expect(() => assertSendable(base)).not.toThrow();
  });

  it('refuses a payload larger than the CLI buffer, which would hang the HAProxy session', () => {
    const payload = Array.from({ length: 2000 }, (_, i) => `key${i} value${i}`).join('\n');
    expect(payload.length).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    expect(() => assertSendable({ ...base, line: 'add map /m <<', payload })).toThrow(/at most/);
  });
});
