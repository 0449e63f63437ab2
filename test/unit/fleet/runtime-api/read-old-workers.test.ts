import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { showStatOfTypes } from '../../../../src/fleet/runtime-api/commands/stat-commands.js';
import { readOldWorkers } from '../../../../src/fleet/runtime-api/read-old-workers.js';
import type { RuntimeCommand } from '../../../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult, RuntimeExecutor } from '../../../../src/fleet/runtime-api/runtime-executor.js';

/** `show proc` with current worker 22363 and old worker 21215, as HAProxy 2.6.12 printed it. */
const PROC = readFileSync(new URL('../../../fixtures/runtime/show-proc-old-worker.txt', import.meta.url), 'utf8');
const STAT = showStatOfTypes(['frontend', 'backend', 'server']);

/** A fake master CLI: `show proc` answers `proc`; `@!<pid> …` answers `workers[pid]`, or "not found". */
function master(
  proc: string | null,
  workers: Record<number, string | { error: string }>,
  sent: string[] = [],
): RuntimeExecutor {
  return {
    execute: async (commands: readonly RuntimeCommand[]) =>
      commands.map((command): CommandResult => {
        sent.push(command.line);
        if (command.line === 'show proc')
          return proc === null
            ? { status: 'not-executed', command, message: 'connect ECONNREFUSED' }
            : { status: 'ok', command, output: proc };
        const pid = Number(/^@!(\d+) /.exec(command.line)![1]);
        const reply = workers[pid];
        if (reply === undefined)
          return { status: 'error', command, message: `Can't find the target PID matching the prefix '@!${pid}'` };
        return typeof reply === 'string'
          ? { status: 'ok', command, output: reply }
          : { status: 'error', command, message: reply.error };
      }),
  };
}

describe('readOldWorkers', () => {
  it('when the master lists an old worker, then only the old worker is asked, through @!<pid>', async () => {
    const sent: string[] = [];
    const replies = await readOldWorkers(
      master(PROC, { 21215: 'old stats', 22363: 'current stats' }, sent),
      STAT,
      500,
      Promise.resolve(22363),
    );
    expect(replies).toEqual({ ok: true, workers: [{ pid: 21215, output: 'old stats' }] });
    expect(sent).toEqual(['show proc', '@!21215 show stat -1 7 -1']);
  });

  it('when the worker the Runtime API reached is newer than the current one show proc lists, then that one is read too', async () => {
    const replies = await readOldWorkers(
      master(PROC, { 21215: 'old', 22363: 'was current' }),
      STAT,
      500,
      Promise.resolve(23000),
    );
    expect(replies).toEqual({
      ok: true,
      workers: [
        { pid: 21215, output: 'old' },
        { pid: 22363, output: 'was current' },
      ],
    });
  });

  it('when an old worker exits before it is asked, then it is left out', async () => {
    expect(await readOldWorkers(master(PROC, {}), STAT, 500, Promise.resolve(22363))).toEqual({
      ok: true,
      workers: [],
    });
  });

  it('when the master does not answer or a worker read fails, then the reply says why', async () => {
    expect(await readOldWorkers(master(null, {}), STAT, 500, Promise.resolve(null))).toEqual({
      ok: false,
      error: 'show proc: connect ECONNREFUSED',
    });
    expect(
      await readOldWorkers(master(PROC, { 21215: { error: 'Permission denied' } }), STAT, 500, Promise.resolve(22363)),
    ).toEqual({
      ok: false,
      error: 'worker 21215: Permission denied',
    });
    expect(await readOldWorkers(master('garbage', {}), STAT, 500, Promise.resolve(null))).toMatchObject({
      ok: false,
      error: expect.stringContaining('show proc'),
    });
  });

  it('when the master hangs, then the answer comes within the timeout', async () => {
    const hung: RuntimeExecutor = { execute: () => new Promise(() => undefined) };
    const started = Date.now();
    expect(await readOldWorkers(hung, STAT, 100, Promise.resolve(null))).toEqual({
      ok: false,
      error: 'no answer from the master CLI within 100 ms',
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
