import { describe, expect, it } from 'vitest';
import { cronEvery, every, isSchedulable } from '../../../src/jobs/schedule.js';

describe('cronEvery', () => {
  it('when the interval divides a minute or an hour, then cron fires at an even pace', () => {
    expect(cronEvery(1)).toBe('*/1 * * * * *');
    expect(cronEvery(10)).toBe('*/10 * * * * *');
    expect(cronEvery(60)).toBe('0 */1 * * * *');
    expect(cronEvery(300)).toBe('0 */5 * * * *');
  });

  it('when it does not, then it is refused at setup', () => {
    for (const s of [0, 7, 45, 90, 7200, 1.5]) expect(isSchedulable(s), String(s)).toBe(false);
    expect(() => cronEvery(7)).toThrow(/divisor of 60/);
  });
});

describe('every', () => {
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
    await new Promise((r) => setTimeout(r, 3300));
    await job.stop();
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(runs).toBeLessThanOrEqual(2);
    expect(maxActive).toBe(1);
    expect(finished).toBe(runs);
    const after = runs;
    await new Promise((r) => setTimeout(r, 1200));
    expect(runs).toBe(after);
  });

  it('when a run throws, then the error is reported and the schedule carries on', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const job = every(1, async () => {
      runs++;
      throw new Error('boom');
    }, (err) => errors.push(err));
    const deadline = Date.now() + 5000;
    while (runs < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await job.stop();
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(errors.length).toBe(runs);
  });
});
