import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SerialLane, type LaneOutcome, type SerialLaneOptions } from '../../../src/util/serial-lane.js';

/**
 * A lane whose runs last until the test finishes them (`finish`, `fail`) and record when they
 * started (fake time); the lane's retry delay is 100 ms times the failures in a row.
 */
function controlledLane(options: Partial<SerialLaneOptions> = {}) {
  const starts: number[] = [];
  const pending: ((outcome: LaneOutcome) => void)[] = [];
  const failures: { error: unknown; retryMs: number }[] = [];
  const lane = new SerialLane({
    run: () => {
      starts.push(Date.now());
      return new Promise<LaneOutcome>((resolve) => pending.push(resolve));
    },
    retryDelay: (n) => 100 * n,
    onFailure: (error, retryMs) => failures.push({ error, retryMs }),
    now: () => Date.now(),
    ...options,
  });
  /** Ends the oldest run in flight. */
  const end = async (outcome: LaneOutcome = { ok: true }) => {
    pending.shift()!(outcome);
    await vi.advanceTimersByTimeAsync(0);
  };
  return {
    lane,
    starts,
    failures,
    running: () => pending.length,
    finish: (followUpMs?: number) => end({ ok: true, followUpMs }),
    fail: (error: unknown) => end({ ok: false, error }),
  };
}

describe('SerialLane', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('when asked during a run, then runs never overlap and one more run follows, however many asks came', async () => {
    const l = controlledLane();
    l.lane.request();
    for (let i = 0; i < 5; i++) l.lane.request();
    expect(l.running()).toBe(1);
    await l.finish();
    expect(l.starts).toHaveLength(2);
    expect(l.running()).toBe(1);
    await l.finish();
    expect(l.starts).toHaveLength(2);
    expect(l.lane.busy).toBe(false);
  });

  it('when a run fails, then it is retried on the lane’s timer with the delay for the failures in a row, counted again from one after a success', async () => {
    const l = controlledLane();
    l.lane.request();
    await l.fail(new Error('connect ECONNREFUSED'));
    expect(l.lane.failing).toBe(true);
    expect(l.failures).toEqual([{ error: new Error('connect ECONNREFUSED'), retryMs: 100 }]);
    await vi.advanceTimersByTimeAsync(99);
    expect(l.starts).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(l.starts).toEqual([0, 100]);
    await l.fail('again');
    expect(l.failures.at(-1)!.retryMs).toBe(200);
    await vi.advanceTimersByTimeAsync(200);
    await l.finish();
    expect(l.lane.failing).toBe(false);
    l.lane.request();
    await l.fail('once more');
    expect(l.failures.at(-1)!.retryMs).toBe(100);
  });

  it('when a run throws, then that counts as a failure with what it threw', async () => {
    const failures: unknown[] = [];
    const lane = new SerialLane({
      run: () => Promise.reject(new Error('boom')),
      retryDelay: () => 1000,
      onFailure: (error) => failures.push(error),
    });
    lane.request();
    await vi.advanceTimersByTimeAsync(0);
    expect(failures).toEqual([new Error('boom')]);
    await lane.stop();
  });

  it('when asked while backing off, then it runs at once and the pending retry is dropped', async () => {
    const l = controlledLane();
    l.lane.request();
    await l.fail('down');
    await vi.advanceTimersByTimeAsync(50);
    l.lane.request();
    expect(l.starts).toEqual([0, 50]);
    await l.finish();
    await vi.advanceTimersByTimeAsync(1000);
    expect(l.starts).toEqual([0, 50]);
  });

  it('when a run asks for a follow-up, then another run starts that much later, and the timer hook is told first', async () => {
    const timers: number[] = [];
    const l = controlledLane({ onTimer: () => timers.push(Date.now()) });
    l.lane.request();
    await l.finish(500);
    await vi.advanceTimersByTimeAsync(499);
    expect(l.starts).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(timers).toEqual([500]);
    expect(l.starts).toEqual([0, 500]);
  });

  it('when skip says the ask is covered, then the round ends without a run, and a follow-up asked for before still comes', async () => {
    let covered = false;
    const l = controlledLane({ skip: () => covered });
    l.lane.request();
    l.lane.request(); // asks for one more after the first
    covered = true; // ...which the first run turns out to cover
    await l.finish(300);
    expect(l.starts).toEqual([0]);
    expect(l.lane.busy).toBe(false);
    covered = false;
    await vi.advanceTimersByTimeAsync(300);
    expect(l.starts).toEqual([0, 300]);
  });

  it('when spaced, then runs start at least the spacing apart (growing with the last run), and asks during the wait share the next run', async () => {
    const l = controlledLane({ spacing: (lastRunMs) => Math.max(200, 3 * lastRunMs) });
    l.lane.request();
    await vi.advanceTimersByTimeAsync(10);
    l.lane.request();
    await l.finish(); // took 10 ms: the next may start at 200
    l.lane.request(); // during the wait
    await vi.advanceTimersByTimeAsync(189);
    expect(l.starts).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(l.starts).toEqual([0, 200]);
    await vi.advanceTimersByTimeAsync(100);
    await l.finish(); // took 100 ms: the next may start at 200 + 300
    expect(l.lane.busy).toBe(false);
    l.lane.request();
    await vi.advanceTimersByTimeAsync(199);
    expect(l.starts).toEqual([0, 200]);
    await vi.advanceTimersByTimeAsync(1);
    expect(l.starts).toEqual([0, 200, 500]);
  });

  it('when stopped, then it waits for the run in flight, runs nothing more and drops its timers', async () => {
    const l = controlledLane();
    l.lane.request();
    l.lane.request();
    let stopped = false;
    const stopping = l.lane.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    await l.fail('down');
    await stopping;
    expect(l.lane.isStopped).toBe(true);
    expect(l.failures).toEqual([]);
    l.lane.request();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(l.starts).toEqual([0]);
  });
});
