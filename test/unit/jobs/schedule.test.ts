import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { every } from '../../../src/jobs/schedule.js';

/** Fake timers drive node-cron's clock and timers: time is the subject here, and no test waits for it. */
describe('every', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    // Half a second past a whole second: the ticks come at +0.5 s, +1.5 s, +2.5 s …
    vi.setSystemTime(new Date('2026-03-01T12:00:00.500Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('when a run outlasts the interval, then ticks are skipped rather than overlapping, and stop waits for the run', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let finished = 0;
    const job = every(1, async () => {
      runs++;
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 1500));
      active--;
      finished++;
    });
    // Runs start at the ticks of +0.5 s and +2.5 s; the tick of +1.5 s comes while the first runs.
    await vi.advanceTimersByTimeAsync(3300);
    expect(runs).toBe(2);
    expect(maxActive).toBe(1);
    expect(finished).toBe(1);
    let stopped = false;
    const stopping = job.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(100);
    expect(stopped, 'stop waits for the run in flight').toBe(false);
    await vi.advanceTimersByTimeAsync(1200);
    await stopping;
    expect(finished).toBe(runs);
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toBe(2);
  });

  it('when a run throws, then the error is reported and the schedule carries on', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const job = every(
      1,
      async () => {
        runs++;
        throw new Error('boom');
      },
      (err) => errors.push(err),
    );
    await vi.advanceTimersByTimeAsync(2000);
    await job.stop();
    expect(runs).toBe(2);
    expect(errors).toEqual([new Error('boom'), new Error('boom')]);
  });
});
