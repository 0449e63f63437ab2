import { describe, expect, it } from 'vitest';
import { sampleKey, withRates, type Counters, type StatSample } from '../../../src/domain/stats.js';
import { mergeWorkerSamples, type WorkerCounters } from '../../../src/domain/worker-samples.js';

const counters = (requests: number, ok = requests, denied = 0): Counters => ({
  requests,
  responses2xx: ok,
  responses4xx: 0,
  responses5xx: 0,
  denied,
  refused: 0,
  bytesIn: 0,
  bytesOut: 0,
});

function fe(sessions: number, requests: number, over: Partial<StatSample> = {}): StatSample {
  return {
    kind: 'frontend',
    tenant: 't1',
    proxy: 'fe_t1_web',
    name: 'web',
    pool: null,
    sessions,
    sessionLimit: 100,
    sessionRate: 1,
    counters: counters(requests),
    rates: null,
    status: null,
    checkStatus: null,
    ...over,
  };
}

function member(name: string, sessions: number, requests: number, status = 'UP'): StatSample {
  return {
    kind: 'member',
    tenant: 't1',
    proxy: 'be_t1_web',
    name,
    pool: 'web',
    sessions,
    sessionLimit: 10,
    sessionRate: 0,
    counters: counters(requests),
    rates: null,
    status,
    checkStatus: 'L7OK',
  };
}

/** A previous read: each worker's counters of the frontend. */
const earlier = (...workers: { pid: number | null; current: boolean; requests: number }[]): WorkerCounters[] =>
  workers.map((w) => ({
    pid: w.pid,
    current: w.current,
    counters: new Map([[sampleKey(fe(0, 0)), counters(w.requests)]]),
  }));

describe('mergeWorkerSamples', () => {
  it('when only the current worker is read, then the samples and rates are what withRates gives', () => {
    const samples = [fe(3, 150), member('m1', 3, 90)];
    const previous = new Map([
      [sampleKey(fe(0, 0)), counters(100)],
      [sampleKey(member('m1', 0, 0)), counters(95)],
    ]);
    const merged = mergeWorkerSamples(
      { pid: null, samples },
      [],
      [{ pid: null, current: true, counters: previous }],
      10,
    );
    expect(merged.samples).toEqual(withRates(samples, previous, 10));
    expect(merged.samples[0]!.rates!.requests).toBe(5);
    // m1's counter went down: a reset, counted from 0 since.
    expect(merged.samples[1]!.rates!.requests).toBe(9);
    expect(merged.workers).toEqual([
      { pid: null, current: true, counters: new Map(samples.map((s) => [sampleKey(s), s.counters])) },
    ]);
  });

  it("when an old worker still holds sessions after a reload, then sessions add up and the cap is the current worker's", () => {
    const merged = mergeWorkerSamples(
      { pid: 20, samples: [fe(1, 5, { sessionLimit: 200 }), member('m1', 1, 5)] },
      [{ pid: 10, samples: [fe(4, 80, { sessionLimit: 100, sessionRate: 0 }), member('m1', 4, 80, 'UP')] }],
      undefined,
      0,
    );
    expect(merged.samples).toHaveLength(2);
    expect(merged.samples[0]).toMatchObject({
      kind: 'frontend',
      sessions: 5,
      sessionLimit: 200,
      sessionRate: 1,
      counters: counters(85),
      rates: null,
    });
    expect(merged.samples[1]).toMatchObject({
      kind: 'member',
      name: 'm1',
      sessions: 5,
      sessionLimit: 10,
      status: 'UP',
    });
    expect(merged.workers.map((w) => [w.pid, w.current])).toEqual([
      [20, true],
      [10, false],
    ]);
  });

  it("when each worker was read before, then the rate is the sum of each worker's own delta", () => {
    const merged = mergeWorkerSamples(
      { pid: 20, samples: [fe(1, 60)] },
      [{ pid: 10, samples: [fe(4, 130)] }],
      earlier({ pid: 20, current: true, requests: 20 }, { pid: 10, current: false, requests: 100 }),
      10,
    );
    // (60 - 20) / 10 + (130 - 100) / 10: summing counters first would give (190 - 120) / 10 too, but
    // only while both workers live; see the next test for when one exits.
    expect(merged.samples[0]!.rates!.requests).toBe(7);
  });

  it('when an old worker exited since the last read, then it contributes nothing and the drop in the sum is no reset', () => {
    const merged = mergeWorkerSamples(
      { pid: 20, samples: [fe(1, 60)] },
      [],
      earlier({ pid: 20, current: true, requests: 20 }, { pid: 10, current: false, requests: 100 }),
      10,
    );
    expect(merged.samples[0]).toMatchObject({ sessions: 1, counters: counters(60) });
    expect(merged.samples[0]!.rates!.requests).toBe(4);
    expect(merged.workers.map((w) => w.pid)).toEqual([20]);
  });

  it('when a reload happened since the last read, then the old worker keeps its baseline and the new one counts from 0', () => {
    const merged = mergeWorkerSamples(
      { pid: 30, samples: [fe(1, 12)] },
      [{ pid: 20, samples: [fe(2, 70)] }],
      earlier({ pid: 20, current: true, requests: 50 }),
      4,
    );
    // (70 - 50) / 4 from the worker that was current, 12 / 4 from the new one.
    expect(merged.samples[0]!.rates!.requests).toBe(8);
    expect(merged.samples[0]!.sessions).toBe(3);
  });

  it('when an old worker is read for the first time, then the rate has only the workers with a baseline', () => {
    const merged = mergeWorkerSamples(
      { pid: 20, samples: [fe(1, 40)] },
      [{ pid: 10, samples: [fe(2, 500)] }],
      earlier({ pid: 20, current: true, requests: 20 }),
      10,
    );
    expect(merged.samples[0]!.rates!.requests).toBe(2);
    expect(merged.samples[0]!.sessions).toBe(3);
  });

  it('when no worker has a baseline, then the rates are null', () => {
    const merged = mergeWorkerSamples(
      { pid: 20, samples: [fe(1, 40)] },
      [{ pid: 10, samples: [fe(2, 500)] }],
      earlier({ pid: 9, current: false, requests: 1 }),
      10,
    );
    expect(merged.samples[0]!.rates).toBeNull();
  });

  it('when a counter of an old worker went down, then it is a reset: that worker counted from 0 since', () => {
    const merged = mergeWorkerSamples(
      { pid: 20, samples: [fe(0, 20)] },
      [{ pid: 10, samples: [fe(1, 30)] }],
      earlier({ pid: 20, current: true, requests: 20 }, { pid: 10, current: false, requests: 100 }),
      10,
    );
    expect(merged.samples[0]!.rates!.requests).toBe(3);
  });

  it('when only an old worker still has an object (removed by the reload), then it is kept without a cap and with its status', () => {
    const merged = mergeWorkerSamples(
      { pid: 20, samples: [fe(0, 0)] },
      [{ pid: 10, samples: [fe(2, 10), member('m9', 2, 10, 'DRAIN')] }],
      undefined,
      0,
    );
    expect(merged.samples.map((s) => s.name)).toEqual(['web', 'm9']);
    expect(merged.samples[1]).toMatchObject({ sessions: 2, sessionLimit: null, status: 'DRAIN', checkStatus: 'L7OK' });
  });

  it('when the master lists the current worker as old (a reload between the two reads) or a pid twice, then it is counted once', () => {
    const merged = mergeWorkerSamples(
      { pid: 20, samples: [fe(3, 10)] },
      [
        { pid: 20, samples: [fe(3, 10)] },
        { pid: 10, samples: [fe(1, 5)] },
        { pid: 10, samples: [fe(1, 5)] },
      ],
      undefined,
      0,
    );
    expect(merged.samples[0]!.sessions).toBe(4);
    expect(merged.workers.map((w) => w.pid)).toEqual([20, 10]);
  });

  it("when the current worker's pid is not known, then it keeps the previous current worker's baseline", () => {
    const merged = mergeWorkerSamples(
      { pid: null, samples: [fe(1, 60)] },
      [],
      earlier({ pid: 20, current: true, requests: 20 }, { pid: 10, current: false, requests: 5 }),
      10,
    );
    expect(merged.samples[0]!.rates!.requests).toBe(4);
  });
});
