import { describe, expect, it } from 'vitest';
import { onWorker, reload, showProc } from '../../../../../src/fleet/runtime-api/commands/master-commands.js';
import { showServersState } from '../../../../../src/fleet/runtime-api/commands/server-commands.js';

describe('master CLI command builders', () => {
  it('target the master CLI for show proc and reload', () => {
    expect(showProc()).toMatchObject({ line: 'show proc', target: 'master', kind: 'show-proc' });
    expect(reload()).toMatchObject({ line: 'reload', target: 'master', kind: 'reload' });
  });

  it('pass a worker command to a worker named by PID', () => {
    expect(onWorker(2453, showServersState())).toMatchObject({
      target: 'master',
      line: '@!2453 show servers state',
      kind: 'show-servers-state',
    });
    expect(() => onWorker(0, showServersState())).toThrow(/pid/);
    expect(() => onWorker(1, showProc())).toThrow(/worker command/);
  });
});
