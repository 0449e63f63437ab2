import { describe, expect, it } from 'vitest';
import {
  addServer,
  delServer,
  disableHealth,
  disableServer,
  enableHealth,
  enableServer,
  getWeight,
  setServerAddr,
  setServerMaxconn,
  setServerState,
  setServerWeight,
  showServersState,
} from '../../../../../src/fleet/runtime-api/commands/server-commands.js';
import { UnsafeArgumentError } from '../../../../../src/fleet/runtime-api/commands/runtime-command.js';

describe('server command builders', () => {
  it('format one command line each, with a description', () => {
    expect(setServerWeight('pool_t1', 'm3', 20).line).toBe('set server pool_t1/m3 weight 20');
    expect(setServerAddr('be', 's1', '10.0.0.7', 8080).line).toBe('set server be/s1 addr 10.0.0.7 port 8080');
    expect(setServerAddr('be', 's1', '2001:DB8::1', 80).line).toBe('set server be/s1 addr 2001:db8::1 port 80');
    expect(setServerState('be', 's1', 'drain').line).toBe('set server be/s1 state drain');
    expect(setServerMaxconn('be', 's1', 30).line).toBe('set maxconn server be/s1 30');
    expect(getWeight('be', 's1').line).toBe('get weight be/s1');
    expect(enableServer('be', 's1').line).toBe('enable server be/s1');
    expect(disableServer('be', 's1').line).toBe('disable server be/s1');
    expect(enableHealth('be', 's1').line).toBe('enable health be/s1');
    expect(disableHealth('be', 's1').line).toBe('disable health be/s1');
    expect(delServer('be', 's1').line).toBe('del server be/s1');
    expect(setServerWeight('be', 's1', 0).description).toBe('set the weight of be/s1 to 0');
  });

  it('read the state of every server, or of one backend', () => {
    expect(showServersState().line).toBe('show servers state');
    expect(showServersState('be_t1').line).toBe('show servers state be_t1');
  });

  it('add a server with the same options the renderer puts on configured servers', () => {
    expect(addServer('be', 'm9', '10.0.0.9', 8080).line).toBe('add server be/m9 10.0.0.9:8080');
    expect(
      addServer('be', 'm9', '10.0.0.9', 8443, {
        weight: 50,
        maxconn: 100,
        backup: true,
        check: { intervalMs: 2000, rise: 2, fall: 3, port: 9000, ssl: true, sni: 'app.example.com' },
      }).line,
    ).toBe(
      'add server be/m9 10.0.0.9:8443 weight 50 maxconn 100 backup check inter 2000 rise 2 fall 3 port 9000 check-ssl check-sni app.example.com',
    );
    expect(addServer('be', 'm9', '::1', 80).line).toBe('add server be/m9 [::1]:80');
  });

  it('add a server of TLS members with its verification, SNI, ALPN and client certificate', () => {
    const tls = {
      verify: 'required',
      caFile: '/etc/sy/member-tls/t/ca/b.pem',
      sni: 'req.hdr(host),field(1,:)',
      alpn: 'h2,http/1.1',
      crt: '/etc/sy/member-tls/t/client/c.pem',
    } as const;
    expect(
      addServer('be', 'm9', '10.0.0.9', 8443, {
        tls,
        check: { intervalMs: 2000, ssl: true, sni: 'app.example.com', alpn: 'http/1.1' },
      }).line,
    ).toBe(
      'add server be/m9 10.0.0.9:8443 ssl verify required ca-file /etc/sy/member-tls/t/ca/b.pem sni req.hdr(host),field(1,:) alpn h2,http/1.1 crt /etc/sy/member-tls/t/client/c.pem check inter 2000 check-ssl check-sni app.example.com check-alpn http/1.1',
    );
    expect(
      addServer('be', 'm9', '10.0.0.9', 8443, {
        tls: { verify: 'required', caFile: '@system-ca', sni: 'str(api.internal)' },
        check: { plain: true },
      }).line,
    ).toBe(
      'add server be/m9 10.0.0.9:8443 ssl verify required ca-file @system-ca sni str(api.internal) check no-check-ssl',
    );
  });

  it('refuses TLS arguments that are not what the renderer prints', () => {
    expect(() => addServer('be', 'm', '10.0.0.9', 1, { tls: { verify: 'required', sni: 'req.hdr(x-evil)' } })).toThrow(
      /tls.sni/,
    );
    expect(() => addServer('be', 'm', '10.0.0.9', 1, { tls: { verify: 'required', caFile: '@other' } })).toThrow(
      /tls.caFile/,
    );
    expect(() => addServer('be', 'm', '10.0.0.9', 1, { tls: { verify: 'required', alpn: 'h3' } })).toThrow(/tls.alpn/);
    expect(() => addServer('be', 'm', '10.0.0.9', 1, { tls: { verify: 'maybe' as 'none' } })).toThrow(/tls.verify/);
  });
});

describe('unsafe server arguments are refused before any command exists', () => {
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
    refuses(() => setServerWeight(value, 's1', 1));
    refuses(() => setServerWeight('be', value, 1));
  });

  it('weights outside 0-256, fractions and non-numbers', () => {
    refuses(() => setServerWeight('be', 's1', 257));
    refuses(() => setServerWeight('be', 's1', -1));
    refuses(() => setServerWeight('be', 's1', 1.5));
    refuses(() => setServerWeight('be', 's1', Number.NaN));
    refuses(() => setServerWeight('be', 's1', '10' as unknown as number));
    expect(setServerWeight('be', 's1', 256).line).toContain('weight 256');
  });

  it('ports HAProxy would take but mean something else (0, relative) and bad addresses', () => {
    refuses(() => setServerAddr('be', 's1', '10.0.0.1', 0));
    refuses(() => setServerAddr('be', 's1', '10.0.0.1', 65536));
    refuses(() => setServerAddr('be', 's1', '10.0.0.1 port 1', 80));
    refuses(() => setServerAddr('be', 's1', 'app.example.com', 80));
    refuses(() => setServerAddr('be', 's1', '010.0.0.1', 80));
    refuses(() => addServer('be', 's1', '10.0.0.1', 80, { weight: 300 }));
    refuses(() => addServer('be', 's1', '10.0.0.1', 80, { check: { sni: 'x.example' } }));
    refuses(() => addServer('be', 's1', '10.0.0.1', 80, { check: { ssl: true, sni: 'x;y' } }));
  });

  it('the error names the argument and the rule', () => {
    try {
      setServerWeight('be', 's;1', 1);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({
        name: 'UnsafeArgumentError',
        argument: 'server',
        rule: expect.stringContaining('name'),
      });
    }
  });
});
