import { describe, expect, it } from 'vitest';
import type { TenantState } from '../../../../src/db/desired-state-repository.js';
import { ServedHistory } from '../../../../src/services/config/served-history.js';

const states = (n: number): TenantState[] => [{ tenant: { id: `t${n}` } } as unknown as TenantState];

describe('ServedHistory', () => {
  it('answers the states a node’s version served, per node', () => {
    const history = new ServedHistory();
    history.remember('edge-1', 'h1', states(1), null);
    expect(history.servedAt('edge-1', 'h1')).toEqual(states(1));
    expect(history.servedAt('edge-2', 'h1')).toBeUndefined();
    expect(history.servedAt('edge-1', 'h2')).toBeUndefined();
  });

  it('keeps the eight newest versions, and the one the node runs however old it is', () => {
    const history = new ServedHistory();
    for (let v = 1; v <= 12; v++) history.remember('edge-1', `h${v}`, states(v), 'h2');
    expect(history.servedAt('edge-1', 'h2')).toEqual(states(2));
    expect(history.servedAt('edge-1', 'h1')).toBeUndefined();
    expect(history.servedAt('edge-1', 'h5')).toBeUndefined();
    for (let v = 6; v <= 12; v++) expect(history.servedAt('edge-1', `h${v}`), `h${v}`).toEqual(states(v));
  });

  it('when a version is stored again, then it counts as the newest', () => {
    const history = new ServedHistory();
    for (let v = 1; v <= 8; v++) history.remember('edge-1', `h${v}`, states(v), null);
    history.remember('edge-1', 'h1', states(1), null);
    history.remember('edge-1', 'h9', states(9), null);
    expect(history.servedAt('edge-1', 'h1')).toEqual(states(1));
    expect(history.servedAt('edge-1', 'h2')).toBeUndefined();
  });
});
