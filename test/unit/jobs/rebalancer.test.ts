import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Rebalancer } from '../../../src/jobs/rebalancer.js';
import { createLogger } from '../../../src/logger.js';
import type { RebalancePlan } from '../../../src/services/allocation-service.js';

const plan = (pending: boolean): RebalancePlan => ({
  revision: 7,
  computedAt: '',
  demand: 'none',
  allocations: [],
  removals: [],
  nodes: [],
  warnings: [],
  pending,
  changes: pending
    ? [
        {
          tenantId: 'a',
          node: 'n',
          dimension: 'connections',
          from: 1,
          to: 2,
          reason: 'demand',
          detail: 'd',
          kind: 'haproxy',
          deferred: null,
        },
      ]
    : [],
});

function setup(opts: { pending: boolean; fail?: boolean }) {
  const calls = { plan: 0, apply: 0 };
  const changes = new EventEmitter<{ change: [{ revision: number }] }>();
  const allocations = {
    plan: async () => {
      calls.plan++;
      if (opts.fail) throw new Error('database gone');
      return plan(opts.pending);
    },
    apply: async (p: RebalancePlan) => {
      calls.apply++;
      return { revision: 8, changed: true, items: p.changes.map((c) => ({ ...c, status: 'applied' as const })) };
    },
  };
  const job = new Rebalancer(
    { allocations, changes, logger: createLogger('silent') },
    { intervalMs: 60_000, debounceMs: 5 },
  );
  return { job, calls, changes };
}

describe('Rebalancer', () => {
  it('when nothing would change, then a pass plans and writes nothing', async () => {
    const { job, calls } = setup({ pending: false });
    expect(await job.runOnce()).toEqual({ status: 'unchanged', revision: 7, deferred: 0, placementMoves: 0 });
    expect(calls).toEqual({ plan: 1, apply: 0 });
  });

  it('when caps move, then a pass applies the plan and reports what it did', async () => {
    const { job, calls } = setup({ pending: true });
    expect(await job.runOnce()).toEqual({ status: 'applied', revision: 8, applied: 1, deferred: 0, placementMoves: 0 });
    expect(calls.apply).toBe(1);
  });

  it('when a node is unhealthy, then the pass re-places first and plans caps after, counting from when it started leading', async () => {
    const order: string[] = [];
    const sinces: number[] = [];
    const withPlacement = new Rebalancer(
      {
        allocations: {
          plan: async () => {
            order.push('plan');
            return plan(false);
          },
          apply: async () => {
            throw new Error('not called');
          },
        },
        placement: {
          healthPass: async (since: number) => {
            order.push('health');
            sinces.push(since);
            return {
              excluded: [{ node: 'n2', reason: 'no heartbeat for 40 s' }],
              included: [],
              keptForLackOfOthers: [],
              moves: 3,
              revision: 9,
            };
          },
        },
        changes: new EventEmitter(),
        logger: createLogger('silent'),
      },
      { intervalMs: 60_000 },
    );
    const before = Date.now();
    withPlacement.start();
    await withPlacement.stop();
    expect(await withPlacement.runOnce()).toEqual({ status: 'unchanged', revision: 7, deferred: 0, placementMoves: 3 });
    expect(order.slice(-2)).toEqual(['health', 'plan']);
    expect(sinces.at(-1)).toBeGreaterThanOrEqual(before);
  });

  describe('pacing', () => {
    afterEach(() => vi.useRealTimers());

    it('when a poll has stored samples, then a pass runs at once; the interval only fires when no pass ran for that long', async () => {
      vi.useFakeTimers();
      const { job, calls } = setup({ pending: false });
      job.start();
      await vi.advanceTimersByTimeAsync(0);
      expect(calls.plan).toBe(1); // the pass at start
      // Polls every 5 s: each is followed by a pass, and the 60-s fallback never fires in between.
      for (let poll = 1; poll <= 20; poll++) {
        await vi.advanceTimersByTimeAsync(5_000);
        job.afterPoll();
        await vi.advanceTimersByTimeAsync(0);
        expect(calls.plan).toBe(1 + poll);
      }
      // The polls stop: the fallback runs a pass 60 s after the last one.
      await vi.advanceTimersByTimeAsync(59_999);
      expect(calls.plan).toBe(21);
      await vi.advanceTimersByTimeAsync(1);
      expect(calls.plan).toBe(22);
      await job.stop();
      job.afterPoll();
      await vi.advanceTimersByTimeAsync(120_000);
      expect(calls.plan).toBe(22);
    });
  });

  it('when planning fails, then the pass reports the error instead of throwing', async () => {
    const { job } = setup({ pending: true, fail: true });
    expect(await job.runOnce()).toEqual({ status: 'failed', error: 'database gone' });
  });

  it('when a write commits, then a pass follows (debounced), but not after its own commit', async () => {
    vi.useFakeTimers();
    try {
      const { job, calls, changes } = setup({ pending: true });
      job.start();
      await vi.advanceTimersByTimeAsync(0); // the first pass, at start
      expect(calls).toEqual({ plan: 1, apply: 1 });
      changes.emit('change', { revision: 8 }); // its own commit
      await vi.advanceTimersByTimeAsync(30);
      expect(calls.plan).toBe(1);
      changes.emit('change', { revision: 9 });
      changes.emit('change', { revision: 10 });
      await vi.advanceTimersByTimeAsync(4);
      expect(calls.plan, 'not before the debounce').toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(calls.plan, 'one pass for both commits').toBe(2);
      await vi.advanceTimersByTimeAsync(30);
      expect(calls.plan).toBe(2);
      await job.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
