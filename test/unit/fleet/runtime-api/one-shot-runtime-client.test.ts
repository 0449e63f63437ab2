import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reload, showProc } from '../../../../src/fleet/runtime-api/commands/master-commands.js';
import { setServerWeight } from '../../../../src/fleet/runtime-api/commands/server-commands.js';
import { showInfo } from '../../../../src/fleet/runtime-api/commands/stat-commands.js';
import { OneShotRuntimeClient } from '../../../../src/fleet/runtime-api/one-shot-runtime-client.js';
import { createMasterApi } from '../../../../src/fleet/runtime-api/runtime-api.js';
import { FakeRuntimeServer } from './fake-runtime-server.js';

const SHOW_PROC = [
  '#<PID>          <type>          <reloads>       <uptime>        <version>      ',
  '100             master          2 [failed: 1]   0d00h01m00s     2.6.12',
  '# workers',
  '200             worker          1               0d00h00m30s     2.6.12',
  '# programs',
  '',
].join('\n');

describe('OneShotRuntimeClient (a connection per command, for the master CLI)', () => {
  let fake: FakeRuntimeServer;
  beforeEach(async () => {
    fake = await FakeRuntimeServer.start((line) =>
      line === 'show proc' ? SHOW_PROC : line === 'reload' ? '' : 'Unknown command.',
    );
  });
  afterEach(() => fake.stop());

  it('runs master commands one connection each and the master port parses show proc', async () => {
    const master = createMasterApi(new OneShotRuntimeClient({ host: '127.0.0.1', port: fake.port }));
    const procs = await master.showProc();
    expect(procs.master).toMatchObject({ pid: 100, reloads: 2, failedReloads: 1 });
    expect(procs.workers).toEqual([expect.objectContaining({ pid: 200, current: true })]);
    await expect(master.reload()).resolves.toBeUndefined();
    expect(fake.connections).toBe(2);
  });

  it('refuses worker commands on the master socket without connecting', async () => {
    const cli = new OneShotRuntimeClient({ host: '127.0.0.1', port: fake.port });
    const [result] = await cli.execute([showInfo()]);
    expect(result).toMatchObject({ status: 'error', message: expect.stringContaining('not a master CLI command') });
    expect(fake.connections).toBe(0);
  });

  it('reports a command not executed when nothing listens, and the ones after it too', async () => {
    const port = fake.port;
    await fake.stop();
    const cli = new OneShotRuntimeClient({ host: '127.0.0.1', port });
    const results = await cli.execute([showProc(), reload()]);
    expect(results.map((r) => r.status)).toEqual(['not-executed', 'not-executed']);
    fake = await FakeRuntimeServer.start(() => '');
  });

  it('works as a worker client too (the pipelining baseline)', async () => {
    fake.setHandler(() => '');
    const cli = new OneShotRuntimeClient({ host: '127.0.0.1', port: fake.port }, { target: 'worker' });
    const results = await cli.execute([setServerWeight('be', 's1', 1), setServerWeight('be', 's2', 1)]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
  });
});
