import { describe, expect, it } from 'vitest';
import { every } from '../../../src/jobs/schedule.js';

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
