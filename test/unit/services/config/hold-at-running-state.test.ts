import { describe, expect, it } from 'vitest';
import type { TenantState } from '../../../../src/db/desired-state-repository.js';
import type { ReloadHold } from '../../../../src/db/reload-hold-repository.js';
import { holdAtRunningState, type NodeHolds } from '../../../../src/services/config/hold-at-running-state.js';

const NOW = 1_000_000;

/** A tenant with VIPs `name` on 10.0.0.<n>:<port>; `version` tells states of one tenant apart. */
const state = (id: string, version: string, vips: [name: string, port: number][]): TenantState =>
  ({
    tenant: { id },
    version,
    vips: vips.map(([name, port]) => ({ name, address: '10.0.0.1', port, routes: [] })),
    pools: [],
    certificates: [],
  }) as unknown as TenantState;

const hold = (tenant: string, vip: string, port: number, more: Partial<ReloadHold> = {}): ReloadHold => ({
  node: 'edge-1',
  tenant,
  listeners: [{ vip, address: '10.0.0.1', port, reason: 'in-use' }],
  reason: `10.0.0.1:${port} is in use`,
  attempts: 1,
  since: '2024-01-01T00:00:00Z',
  retryAt: NOW + 10_000,
  good: { known: false, state: null },
  ...more,
});

const holds = (
  list: ReloadHold[],
  applied: { hash: string | null; revision: number | null } = { hash: 'v1', revision: 7 },
): NodeHolds => ({
  holds: list,
  appliedHash: applied.hash,
  appliedRevision: applied.revision,
  now: NOW,
});

const a = state('a', 'current', [['web', 80]]);
const bBefore = state('b', 'before', [['web', 80]]);
const b = state('b', 'current', [
  ['web', 80],
  ['api', 8443],
]);
const nothingRemembered = () => undefined;

describe('holdAtRunningState', () => {
  it('when no hold is active (none, or every retry is due), then nobody is held', () => {
    expect(holdAtRunningState([a, b], holds([]), nothingRemembered)).toBeNull();
    expect(holdAtRunningState([a, b], holds([hold('b', 'api', 8443, { retryAt: NOW })]), nothingRemembered)).toBeNull();
  });

  it('when the state the node ran was recorded with the hold, then the tenant is served at it, flagged as a reload hold', () => {
    const outcome = holdAtRunningState(
      [a, b],
      holds([hold('b', 'api', 8443, { good: { known: true, state: bBefore } })]),
      nothingRemembered,
    );
    expect(outcome!.served).toEqual([a, bBefore]);
    expect(outcome!.held).toEqual([
      { tenant: 'b', error: '10.0.0.1:8443 is in use', servingRevision: 7, cause: 'reload' },
    ]);
    expect(outcome!.learned).toEqual([]);
    expect(outcome!.states.get('b')).toBe(bBefore);
    expect(outcome!.retryAt).toBe(NOW + 10_000);
  });

  it('when the node did not run the tenant, then it is left out, with no serving revision', () => {
    const outcome = holdAtRunningState(
      [a, b],
      holds([hold('b', 'api', 8443, { good: { known: true, state: null } })]),
      nothingRemembered,
    );
    expect(outcome!.served).toEqual([a]);
    expect(outcome!.held[0]!.servingRevision).toBeNull();
    expect(outcome!.states.get('b')).toBeNull();
  });

  it('when the applied version is remembered, then the tenant is served at its state there, and that is learned for the hold', () => {
    const servedAt = (hash: string) => (hash === 'v1' ? [a, bBefore] : undefined);
    const outcome = holdAtRunningState([a, b], holds([hold('b', 'api', 8443)]), servedAt);
    expect(outcome!.served).toEqual([a, bBefore]);
    expect(outcome!.learned).toEqual([{ tenant: 'b', state: bBefore }]);
    const without = holdAtRunningState([a, b], holds([hold('b', 'api', 8443)]), () => [a]);
    expect(without!.served).toEqual([a]);
    expect(without!.learned).toEqual([{ tenant: 'b', state: null }]);
  });

  it('when what the node runs is unknown here, then the tenant is served without the VIPs whose listeners failed', () => {
    const outcome = holdAtRunningState(
      [a, b],
      holds([hold('b', 'api', 8443)], { hash: null, revision: null }),
      nothingRemembered,
    );
    expect(outcome!.served[1]!.vips.map((v) => v.name)).toEqual(['web']);
    expect(outcome!.learned).toEqual([]);
  });

  it('when the tenant no longer asks for the held listener (its port moved), then the hold has no cause left', () => {
    const moved = state('b', 'moved', [
      ['web', 80],
      ['api', 9443],
    ]);
    expect(holdAtRunningState([a, moved], holds([hold('b', 'api', 8443)]), nothingRemembered)).toBeNull();
  });

  it('answers the earliest retry among the active holds', () => {
    const c = state('c', 'current', [['web', 81]]);
    const outcome = holdAtRunningState(
      [a, b, c],
      holds([hold('b', 'api', 8443), hold('c', 'web', 81, { retryAt: NOW + 5_000 })]),
      nothingRemembered,
    );
    expect(outcome!.held.map((h) => h.tenant)).toEqual(['b', 'c']);
    expect(outcome!.retryAt).toBe(NOW + 5_000);
  });
});
