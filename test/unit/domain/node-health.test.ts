import { describe, expect, it } from 'vitest';
import { nodeHealth, placementHealth } from '../../../src/domain/node-health.js';

const node = (over: { lastHeartbeatAt?: string | null; createdAt?: string; error?: string | null } = {}) => ({
  lastHeartbeatAt: over.lastHeartbeatAt ?? null,
  createdAt: over.createdAt ?? '2026-01-01T00:00:00.000Z',
  status: { runtime: { error: over.error ?? null } } as never,
});
const t0 = Date.parse('2026-01-01T00:00:00.000Z');

describe('nodeHealth', () => {
  it('when a node heartbeats within three intervals, then it is healthy', () => {
    expect(nodeHealth(node({ lastHeartbeatAt: '2026-01-01T00:00:00.000Z' }), t0 + 30_000, 10_000)).toEqual({
      healthy: true,
      reason: null,
    });
  });

  it('when a node misses three heartbeats, then it is unhealthy and says for how long', () => {
    const h = nodeHealth(node({ lastHeartbeatAt: '2026-01-01T00:00:00.000Z' }), t0 + 31_000, 10_000);
    expect(h).toEqual({ healthy: false, reason: 'no heartbeat for 31 s (more than 3 × 10 s)' });
  });

  it('when a node never sent a heartbeat, then its registration counts as the last sign of life', () => {
    expect(nodeHealth(node(), t0 + 5_000, 10_000).healthy).toBe(true);
    expect(nodeHealth(node(), t0 + 60_000, 10_000).reason).toMatch(/^no heartbeat since it was registered/);
  });

  it('when its Runtime API push failed, then it is unhealthy whatever its heartbeats', () => {
    const h = nodeHealth(
      node({ lastHeartbeatAt: '2026-01-01T00:00:00.000Z', error: 'connect ECONNREFUSED' }),
      t0,
      10_000,
    );
    expect(h).toEqual({ healthy: false, reason: 'its Runtime API push failed: connect ECONNREFUSED' });
  });
});

describe('placementHealth', () => {
  const failing = (since: string) => ({
    ...node({ lastHeartbeatAt: '2026-01-01T00:01:00.000Z' }),
    status: { runtime: { error: 'connect ECONNREFUSED', errorSince: since } },
  });

  it('when one push has just failed, then the node stays in placement', () => {
    expect(placementHealth(failing('2026-01-01T00:01:00.000Z'), t0 + 65_000, 10_000, 0)).toEqual({
      healthy: true,
      reason: null,
    });
  });

  it('when pushes have failed for more than three intervals, then it leaves placement and says why', () => {
    expect(placementHealth(failing('2026-01-01T00:00:20.000Z'), t0 + 61_000, 10_000, 0)).toEqual({
      healthy: false,
      reason: 'its Runtime API pushes have failed for 41 s (more than 3 × 10 s): connect ECONNREFUSED',
    });
  });

  it('when the leader took over recently, then neither silence nor failures before that count', () => {
    const silent = node({ lastHeartbeatAt: '2026-01-01T00:00:00.000Z' });
    expect(placementHealth(silent, t0 + 600_000, 10_000, 0).healthy).toBe(false);
    expect(placementHealth(silent, t0 + 600_000, 10_000, t0 + 590_000).healthy).toBe(true);
    expect(placementHealth(failing('2026-01-01T00:00:00.000Z'), t0 + 600_000, 10_000, t0 + 590_000).healthy).toBe(true);
    // Still failing 40 s into the leadership: now it counts.
    expect(
      placementHealth(
        { ...failing('2026-01-01T00:00:00.000Z'), lastHeartbeatAt: '2026-01-01T00:10:35.000Z' },
        t0 + 640_000,
        10_000,
        t0 + 590_000,
      ).reason,
    ).toMatch(/^its Runtime API pushes have failed for 50 s/);
  });

  it('when a node misses heartbeats, then it leaves placement like the caps rule says', () => {
    expect(placementHealth(node({ lastHeartbeatAt: '2026-01-01T00:00:00.000Z' }), t0 + 31_000, 10_000, 0).reason).toBe(
      'no heartbeat for 31 s (more than 3 × 10 s)',
    );
  });
});
