import { describe, expect, it } from 'vitest';
import { decideConvergence, type ConvergenceInput } from '../../../src/domain/node-convergence.js';

const t0 = Date.parse('2026-01-01T00:00:00.000Z');
const node = (
  over: {
    heartbeat?: string | null;
    applied?: string | null;
    desired?: string | null;
    lastError?: string | null;
    pending?: number;
    error?: string | null;
    runtime?: boolean;
  } = {},
): ConvergenceInput => ({
  lastHeartbeatAt: over.heartbeat === undefined ? '2026-01-01T00:00:00.000Z' : over.heartbeat,
  createdAt: '2026-01-01T00:00:00.000Z',
  runtimeAddress: over.runtime === false ? null : { host: '127.0.0.1', port: 9999 },
  status: {
    desiredHash: over.desired === undefined ? 'h1' : over.desired,
    appliedHash: over.applied === undefined ? 'h1' : over.applied,
    lastError: over.lastError ?? null,
    runtime: { pending: over.pending ?? 0, error: over.error ?? null },
  },
});

describe('decideConvergence', () => {
  it('when a live node runs the latest config with nothing pending, then it is converged', () => {
    expect(decideConvergence(node(), t0 + 1000, 10_000)).toEqual({ converged: true, waitingFor: null, cause: null });
  });

  it('when its agent misses three heartbeats, then it is not converged whatever hashes it reported', () => {
    expect(decideConvergence(node(), t0 + 31_000, 10_000)).toMatchObject({
      converged: false,
      cause: 'agent_silent',
      waitingFor: expect.stringContaining('no heartbeat for 31 s'),
    });
  });

  it('when its last Runtime API push failed, then it is not converged and says the error', () => {
    expect(decideConvergence(node({ error: 'connect ECONNREFUSED' }), t0, 10_000)).toMatchObject({
      converged: false,
      cause: 'runtime_api_failing',
      waitingFor: expect.stringContaining('connect ECONNREFUSED'),
    });
  });

  it('when it has not applied the latest config, then it waits for its agent, or says why the agent failed', () => {
    expect(decideConvergence(node({ desired: null }), t0, 10_000).cause).toBe('no_config');
    expect(decideConvergence(node({ applied: 'h0' }), t0, 10_000)).toMatchObject({
      cause: 'not_applied',
      waitingFor: 'agent to apply the latest configuration',
    });
    expect(decideConvergence(node({ applied: 'h0', lastError: 'bad\nmore' }), t0, 10_000)).toMatchObject({
      cause: 'apply_failed',
      waitingFor: 'agent failed to apply: bad',
    });
  });

  it('when runtime commands are pending on a node with a Runtime API, then it is not converged', () => {
    expect(decideConvergence(node({ pending: 2 }), t0, 10_000)).toMatchObject({
      cause: 'runtime_pending',
      waitingFor: '2 runtime command(s)',
    });
    expect(decideConvergence(node({ pending: 2, runtime: false }), t0, 10_000).converged).toBe(true);
  });

  it("when an NGINX node's runtime channel fails or has entries pending, then it is not converged, and says so in its words", () => {
    const nginx = (over: Parameters<typeof node>[0]) => ({ ...node(over), kind: 'nginx' as const });
    expect(decideConvergence(nginx({ error: 'nothing listens on tls:127.0.0.1:9999' }), t0, 10_000)).toEqual({
      converged: false,
      cause: 'runtime_api_failing',
      waitingFor: 'its runtime channel, whose last push failed: nothing listens on tls:127.0.0.1:9999',
    });
    expect(decideConvergence(nginx({ pending: 3 }), t0, 10_000)).toMatchObject({
      cause: 'runtime_pending',
      waitingFor: '3 runtime entries',
    });
  });
});
