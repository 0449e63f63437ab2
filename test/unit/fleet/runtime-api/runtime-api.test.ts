import { describe, expect, it } from 'vitest';
import { createRuntimeApi, payloadChunks } from '../../../../src/fleet/runtime-api/runtime-api.js';
import { MAX_PAYLOAD_BYTES, type RuntimeCommand } from '../../../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult, RuntimeExecutor } from '../../../../src/fleet/runtime-api/runtime-executor.js';

/** A fake executor: the ports need nothing but `execute`, so no socket is involved. */
function fakeExecutor(
  reply: (c: RuntimeCommand) => CommandResult['status'] | string,
): RuntimeExecutor & { sent: RuntimeCommand[][] } {
  const sent: RuntimeCommand[][] = [];
  return {
    sent,
    execute: async (commands) => {
      sent.push([...commands]);
      return commands.map((command) => {
        const r = reply(command);
        if (r === 'error' || r === 'not-executed') return { status: r, command, message: `${r} for ${command.line}` };
        return { status: 'ok', command, output: r === 'ok' ? '' : r };
      });
    },
  };
}

const PEM = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';

describe('createRuntimeApi', () => {
  it('adds a server, then enables health and the server only once the add succeeded', async () => {
    const ex = fakeExecutor(() => 'ok');
    await createRuntimeApi(ex).servers.add('be', 'm1', '10.0.0.1', 80, { weight: 5, check: { intervalMs: 1000 } });
    expect(ex.sent.map((batch) => batch.map((c) => c.line))).toEqual([
      ['add server be/m1 10.0.0.1:80 weight 5 check inter 1000'],
      ['enable health be/m1', 'enable server be/m1'],
    ]);

    const refused = fakeExecutor((c) => (c.kind === 'add-server' ? 'error' : 'ok'));
    await expect(createRuntimeApi(refused).servers.add('be', 'm1', '10.0.0.1', 80)).rejects.toMatchObject({
      name: 'UpstreamError',
    });
    expect(refused.sent).toHaveLength(1);
  });

  it('removes a server by putting it in maintenance then deleting it', async () => {
    const ex = fakeExecutor((c) => (c.kind === 'del-server' ? 'Server deleted.' : 'ok'));
    await createRuntimeApi(ex).servers.remove('be', 'm1');
    expect(ex.sent[0]!.map((c) => c.line)).toEqual(['set server be/m1 state maint', 'del server be/m1']);
  });

  it('replaces a map atomically: prepare, fill the new version in payload chunks, commit', async () => {
    const ex = fakeExecutor((c) => (c.kind === 'prepare-map' ? 'New version created: 7' : 'ok'));
    const entries = Array.from({ length: 1500 }, (_, i) => [`host${i}.example.com`, `be_tenant_${i}`] as const);
    await createRuntimeApi(ex).maps.replace('/etc/haproxy/hosts.map', entries);
    const [prepare, fill] = ex.sent;
    expect(prepare!.map((c) => c.line)).toEqual(['prepare map /etc/haproxy/hosts.map']);
    expect(fill!.at(-1)!.line).toBe('commit map @7 /etc/haproxy/hosts.map');
    const adds = fill!.slice(0, -1);
    expect(adds.length).toBeGreaterThan(1);
    expect(adds.every((c) => c.line === 'add map @7 /etc/haproxy/hosts.map <<')).toBe(true);
    expect(adds.flatMap((c) => c.payload!.split('\n'))).toHaveLength(1500);
  });

  it('updates a certificate with set + commit, and aborts the transaction when the commit fails', async () => {
    const ok = fakeExecutor(() => 'ok');
    await createRuntimeApi(ok).certificates.update('/c.pem', PEM);
    expect(ok.sent[0]!.map((c) => c.kind)).toEqual(['set-ssl-cert', 'commit-ssl-cert']);

    const failing = fakeExecutor((c) => (c.kind === 'commit-ssl-cert' ? 'error' : 'ok'));
    await expect(createRuntimeApi(failing).certificates.update('/c.pem', PEM)).rejects.toThrow(/commit/);
    expect(failing.sent[1]!.map((c) => c.line)).toEqual(['abort ssl cert /c.pem']);
  });

  it('says "not executed" when the command never ran', async () => {
    const down = fakeExecutor(() => 'not-executed');
    await expect(createRuntimeApi(down).frontends.setMaxconn('fe', 10)).rejects.toThrow(/not executed/);
  });
});

describe('payloadChunks', () => {
  it('keeps each payload under the CLI buffer and loses no entry', () => {
    const entries = Array.from({ length: 3000 }, (_, i) => [`k${i}`.padEnd(40, 'x'), `v${i}`] as const);
    const chunks = payloadChunks(entries);
    expect(chunks.flat()).toEqual(entries);
    for (const chunk of chunks)
      expect(chunk.reduce((n, [k, v]) => n + k.length + v.length + 2, 0)).toBeLessThan(MAX_PAYLOAD_BYTES - 1000);
  });
});
