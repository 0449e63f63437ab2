import { describe, expect, it } from 'vitest';
import { parseShowProc } from '../../../../../src/fleet/replies/show-proc.js';
import { judgeHaproxyReload, judgeNginxReload } from '../../../../../src/fleet/agent/reload/reload-verdict.js';

/** `show proc` as HAProxy 2.6.12 prints it (measured: a good reload, then one refused for a busy port). */
function showProc(master: string, workers: string[], old: string[] = []): ReturnType<typeof parseShowProc> {
  const lines = [
    '#<PID>          <type>          <reloads>       <uptime>        <version>      ',
    master,
    '# workers',
    ...workers,
  ];
  if (old.length > 0) lines.push('# old workers', ...old);
  lines.push('# programs', '');
  return parseShowProc(lines.join('\n'));
}
const start = showProc('2363            master          0 [failed: 0]   0d00h00m01s     2.6.12', [
  '2366            worker          0               0d00h00m01s     2.6.12',
]);

describe('judging a HAProxy reload from show proc', () => {
  it('when a new current worker appears, then it reloaded', () => {
    const after = showProc(
      '2363            master          1 [failed: 0]   0d00h00m05s     2.6.12',
      ['2453            worker          0               0d00h00m00s     2.6.12'],
      ['2366            worker          1               0d00h00m05s     2.6.12'],
    );
    expect(judgeHaproxyReload(start, after)).toEqual({ state: 'reloaded', workers: [2453] });
  });

  it('when the failed count grows and the worker is the same, then it failed, naming the worker still serving', () => {
    const before = showProc('2363            master          1 [failed: 0]   0d00h00m05s     2.6.12', [
      '2453            worker          0               0d00h00m00s     2.6.12',
    ]);
    const after = showProc('2363            master          2 [failed: 1]   0d00h00m10s     2.6.12', [
      '2453            worker          1               0d00h00m05s     2.6.12',
    ]);
    const verdict = judgeHaproxyReload(before, after);
    expect(verdict.state).toBe('failed');
    expect(verdict.state === 'failed' && verdict.message).toMatch(/1 failed reload; worker 2453 keeps serving/);
  });

  it('when the failed count went back to 0 after an earlier failure, then a new worker still means success', () => {
    const before = showProc('2363            master          2 [failed: 1]   0d00h00m10s     2.6.12', [
      '2453            worker          1               0d00h00m05s     2.6.12',
    ]);
    const after = showProc('2363            master          3 [failed: 0]   0d00h00m12s     2.6.12', [
      '2600            worker          0               0d00h00m00s     2.6.12',
    ]);
    expect(judgeHaproxyReload(before, after)).toMatchObject({ state: 'reloaded' });
  });

  it('when the master has not counted the reload yet, then it is pending', () => {
    expect(judgeHaproxyReload(start, start)).toEqual({ state: 'pending' });
  });
});

describe('judging an NGINX reload from the outside', () => {
  it('when every worker is new, then it reloaded', () => {
    expect(judgeNginxReload({ master: 77, workersBefore: [10, 11], workersNow: [20, 21], logSince: '' })).toEqual({
      state: 'reloaded',
      workers: [20, 21],
    });
  });

  it('when the error log has an [emerg] line, then it failed with nginx’s own words', () => {
    const logSince =
      '2026/11/26 15:48:01 [emerg] 77#77: bind() to 127.0.0.64:30001 failed (98: Address already in use)\n';
    const verdict = judgeNginxReload({ master: 77, workersBefore: [10], workersNow: [10], logSince });
    expect(verdict).toEqual({ state: 'failed', message: expect.stringContaining('bind() to 127.0.0.64:30001 failed') });
  });

  it('when old workers still serve and nothing was logged, then it is pending; warnings do not count', () => {
    expect(
      judgeNginxReload({
        master: 77,
        workersBefore: [10],
        workersNow: [10, 20],
        logSince: '[warn] 77#77: conflicting server name',
      }),
    ).toEqual({ state: 'pending' });
  });

  it('when only new workers complain (setrlimit above the hard limit), then the reload still counts', () => {
    const logSince =
      '2026/11/26 16:00:18 [alert] 12234#12234: setrlimit(RLIMIT_NOFILE, 33026) failed (1: Operation not permitted)\n';
    expect(judgeNginxReload({ master: 77, workersBefore: [10], workersNow: [12234], logSince })).toEqual({
      state: 'reloaded',
      workers: [12234],
    });
  });
});
