import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseShowProc, parseUptime } from '../../../../src/fleet/replies/show-proc.js';

/** Replies captured from HAProxy 2.6.12 on this machine (see test/fixtures/runtime). */
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/runtime/${name}`, import.meta.url), 'utf8');

describe('show proc (master CLI)', () => {
  it('gives the master with its reload and failed-reload counts, and the workers', () => {
    const procs = parseShowProc(fixture('show-proc.txt'));
    expect(procs.master).toMatchObject({ type: 'master', reloads: 1, failedReloads: 0, version: '2.6.12-1+deb12u4' });
    expect(procs.master.uptimeSec).toBe(11 * 60 + 26);
    expect(procs.workers).toEqual([
      { pid: 21215, type: 'worker', reloads: 0, uptimeSec: 61, version: '2.6.12-1+deb12u4', current: true },
    ]);
    expect(procs.programs).toEqual([]);
  });

  it('shows a failed reload: the count goes up and the old worker keeps serving', () => {
    const procs = parseShowProc(fixture('show-proc-failed-reload.txt'));
    expect(procs.master).toMatchObject({ reloads: 2, failedReloads: 1 });
    expect(procs.workers).toEqual([expect.objectContaining({ pid: 21215, reloads: 1, current: true })]);
  });

  it('lists old workers still finishing connections after a reload', () => {
    const procs = parseShowProc(fixture('show-proc-old-worker.txt'));
    expect(procs.workers.map((w) => [w.pid, w.current])).toEqual([
      [22363, true],
      [21215, false],
    ]);
    expect(procs.master.failedReloads).toBe(0);
  });

  it('reads uptimes', () => {
    expect(parseUptime('1d02h03m04s')).toBe(93784);
    expect(parseUptime('garbage')).toBeNaN();
  });
});
