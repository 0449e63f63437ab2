import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { classifyReply } from '../../../../src/fleet/runtime-api/reply-verdict.js';

/** Replies captured from HAProxy 2.6.12 on this machine (see test/fixtures/runtime). */
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/runtime/${name}`, import.meta.url), 'utf8');

describe('classifyReply', () => {
  it('an empty reply is success for commands that print nothing', () => {
    for (const kind of [
      'set-server-weight',
      'set-server-state',
      'set-frontend-maxconn',
      'enable-server',
      'add-map',
      'commit-map',
      'reload',
    ] as const) {
      expect(classifyReply(kind, '')).toEqual({ ok: true, output: '' });
      expect(classifyReply(kind, '\n')).toEqual({ ok: true, output: '' });
    }
  });

  it.each([
    ['set-server-weight', 'No such server.'],
    ['set-server-weight', "Require 'backend/server'."],
    ['set-server-weight', 'Absolute weight can only be between 0 and 256 inclusive.'],
    ['set-server-state', "'set server <srv> state' expects 'ready', 'drain' and 'maint'."],
    ['set-frontend-maxconn', 'No such frontend.'],
    ['set-map', 'entry not found.'],
    ['del-map', 'Key not found.'],
    ['add-map', 'Unknown map identifier. Please use #<id> or <file>.'],
    ['commit-map', 'Version number out of range.'],
    ['add-server', 'Already exists a server with the same name in backend.'],
    ['add-server', "'cookie' option is not accepted for dynamic server"],
    ['del-server', 'Only servers in maintenance mode can be deleted.'],
    ['del-server', 'Server still has connections attached to it, cannot remove it.'],
    ['enable-health', 'Health check was not configured on this server, cannot enable.'],
    ['set-server-addr', "Invalid addr '1.2.3.x' by 'stats socket command'"],
    ['set-ssl-cert', "unable to load certificate from file '/c.pem'.\nCan't load the payload\nCan't update /c.pem!"],
    ['commit-ssl-cert', "No ongoing transaction! !\nCan't commit /c.pem!"],
    ['show-stat', 'No such proxy.'],
    ['show-servers-state', "Can't find backend."],
    ['show-info', 'Unknown command, but maybe one of the following ones is a better match:\n  help'],
    ['get-weight', 'No such server.'],
    ['prepare-map', 'Unknown map identifier. Please use #<id> or <file>.'],
  ] as const)("%s: %j is an error with HAProxy's message", (kind, reply) => {
    expect(classifyReply(kind, `${reply}\n`)).toEqual({ ok: false, message: reply });
  });

  it('set server addr reports what changed and that is success', () => {
    for (const reply of [
      "IP changed from '127.0.0.1' to '127.0.0.2', no need to change the port by 'stats socket command'",
      "IP changed from '127.0.0.1' to '::1', port changed from '19121' to '19999' by 'stats socket command'",
      "no need to change the addr, no need to change the port by 'stats socket command'",
      'nothing changed',
    ])
      expect(classifyReply('set-server-addr', reply)).toEqual({ ok: true, output: reply });
    expect(classifyReply('set-server-addr', '')).toEqual({
      ok: false,
      message: 'empty reply where set-server-addr prints a result',
    });
  });

  it('knows the fixed success messages of add/del server, maps and certificates', () => {
    expect(classifyReply('add-server', 'New server registered.\n')).toMatchObject({ ok: true });
    expect(classifyReply('del-server', 'Server deleted.')).toMatchObject({ ok: true });
    expect(classifyReply('prepare-map', 'New version created: 1\n')).toMatchObject({
      ok: true,
      output: 'New version created: 1',
    });
    expect(classifyReply('set-ssl-cert', 'Transaction created for certificate /tmp/hx/site.pem!')).toMatchObject({
      ok: true,
    });
    expect(classifyReply('set-ssl-cert', 'Transaction updated for certificate /tmp/hx/site.pem!')).toMatchObject({
      ok: true,
    });
    expect(classifyReply('commit-ssl-cert', 'Committing /tmp/hx/site.pem.\nSuccess!\n')).toMatchObject({ ok: true });
    expect(classifyReply('commit-ssl-cert', 'Committing /tmp/hx/site.pem...\nSuccess!')).toMatchObject({ ok: true });
    expect(classifyReply('abort-ssl-cert', "Transaction aborted for certificate '/tmp/hx/site.pem'!")).toMatchObject({
      ok: true,
    });
    expect(classifyReply('abort-ssl-cert', 'No ongoing transaction!')).toMatchObject({ ok: false });
    expect(
      classifyReply('show-ssl-cert', "Can't display the certificate: Not found or the certificate is a bundle!"),
    ).toMatchObject({ ok: false });
  });

  it('accepts real read outputs and refuses error text in their place', () => {
    expect(classifyReply('show-stat', fixture('show-stat.csv'))).toMatchObject({ ok: true });
    expect(classifyReply('show-servers-state', fixture('show-servers-state.txt'))).toMatchObject({ ok: true });
    expect(classifyReply('show-info', fixture('show-info.txt'))).toMatchObject({ ok: true });
    expect(classifyReply('show-proc', fixture('show-proc.txt'))).toMatchObject({ ok: true });
    expect(classifyReply('show-map', fixture('show-map.txt'))).toMatchObject({ ok: true });
    expect(classifyReply('show-map', '')).toMatchObject({ ok: true });
    expect(classifyReply('show-map', 'Unknown map identifier. Please use #<id> or <file>.')).toMatchObject({
      ok: false,
    });
    expect(classifyReply('get-weight', '10 (initial 10)\n')).toEqual({ ok: true, output: '10 (initial 10)' });
  });
});
