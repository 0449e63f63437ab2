import { describe, expect, it } from 'vitest';
import { estimateDemand, type StatsSample, type TenantDemand } from '../../../src/domain/demand.js';

const demand = (tenantId: string, amount: number, nodeName = 'n1'): TenantDemand => ({
  tenantId,
  node: nodeName,
  connections: amount,
  requestsPerSecond: amount,
});

describe('estimateDemand', () => {
  const sample = (over: Partial<StatsSample> = {}): StatsSample => ({
    tenantId: 'a',
    node: 'n1',
    sessions: 100,
    queued: 0,
    requestRate: 50,
    rejected: 0,
    intervalSeconds: 10,
    ...over,
  });

  it('takes the first observation as it is: sessions plus queued, and served plus refused requests', () => {
    expect(estimateDemand([sample({ queued: 20, rejected: 300 })], [])).toEqual([
      {
        tenantId: 'a',
        node: 'n1',
        connections: 120,
        requestsPerSecond: 80,
        saturated: { connections: false, requestsPerSecond: true },
      },
    ]);
  });

  it('marks a tenant refused at a cap as saturated in that dimension, and counts 429s already in the rate once', () => {
    const [d] = estimateDemand(
      [sample({ requestRate: 250, rejected: 50, rejectedInRate: true, refusedConnections: 3, intervalSeconds: 1 })],
      [],
    );
    expect(d).toEqual({
      tenantId: 'a',
      node: 'n1',
      connections: 100,
      requestsPerSecond: 250,
      saturated: { connections: true, requestsPerSecond: true },
    });
    expect(estimateDemand([sample()], [d!])[0]!.saturated).toBeUndefined();
  });

  it('rises at once (alpha 1) and falls by half the excess per poll (alpha 0.5)', () => {
    const prev = [demand('a', 100)];
    expect(estimateDemand([sample({ sessions: 200, requestRate: 200 })], prev)[0]).toMatchObject({
      connections: 200,
      requestsPerSecond: 200,
    });
    expect(estimateDemand([sample({ sessions: 0, requestRate: 0 })], prev)[0]).toMatchObject({
      connections: 50,
      requestsPerSecond: 50,
    });
  });

  it('decays to exactly 0 once the estimate falls below half a unit', () => {
    let d = [demand('a', 10)];
    for (let i = 0; i < 20; i++) d = estimateDemand([sample({ sessions: 0, requestRate: 0 })], d);
    expect(d[0]).toMatchObject({ connections: 0, requestsPerSecond: 0 });
  });

  it('adds up the samples of one tenant on one node (one per frontend)', () => {
    expect(estimateDemand([sample(), sample({ sessions: 5, requestRate: 5 })], [])[0]).toMatchObject({
      connections: 105,
      requestsPerSecond: 55,
    });
  });

  it('keeps the previous estimate of a pair with no sample this round: no data is not zero demand', () => {
    const out = estimateDemand([sample()], [demand('b', 42, 'n2')]);
    expect(out).toEqual([
      { tenantId: 'a', node: 'n1', connections: 100, requestsPerSecond: 50 },
      demand('b', 42, 'n2'),
    ]);
  });

  it('ignores negative or non-finite counters and a zero interval', () => {
    const out = estimateDemand(
      [
        sample({
          sessions: -5,
          queued: Number.NaN,
          requestRate: Number.POSITIVE_INFINITY,
          rejected: 7,
          intervalSeconds: 0,
        }),
      ],
      [],
    );
    expect(out[0]).toMatchObject({ connections: 0, requestsPerSecond: 7 });
  });

  it('is the same whatever the order of samples', () => {
    const samples = [sample(), sample({ sessions: 0.1, requestRate: 0.2 }), sample({ tenantId: 'b', sessions: 0.3 })];
    expect(estimateDemand([...samples].reverse(), [])).toEqual(estimateDemand(samples, []));
  });
});
