import { describe, expect, it } from 'vitest';
import { classifyChange, describeClassification, type FleetPlanView } from '../../../src/cli/classify-change.js';

const plan = (...nodes: [string, string | null, boolean?][]): FleetPlanView => ({
  nodes: nodes.map(([node, hash, pending]) => ({
    node,
    latest: hash === null ? null : { structuralHash: hash },
    error: hash === null ? 'haproxy -c failed' : null,
    reload: { pending: pending ?? false },
  })),
});

describe('classifyChange', () => {
  const before = plan(['edge-1', 's1'], ['edge-2', 's2']);

  it('when no node changes structure, then the change goes out through the Runtime API', () => {
    const c = classifyChange(before, plan(['edge-1', 's1'], ['edge-2', 's2']), true);
    expect(describeClassification(c, 2)).toBe('(runtime)');
  });

  it('when a node changes structure, then it reloads, and the plan names the nodes unless all do', () => {
    expect(describeClassification(classifyChange(before, plan(['edge-1', 'x1'], ['edge-2', 'x2']), true), 2)).toBe(
      '(reload)',
    );
    expect(describeClassification(classifyChange(before, plan(['edge-1', 'x1'], ['edge-2', 's2']), true), 2)).toBe(
      '(reload: edge-1)',
    );
  });

  it('without a baseline, takes a pending reload as this change', () => {
    expect(classifyChange(null, plan(['edge-1', 's1', true]), true).change).toBe('reload');
    expect(classifyChange(null, plan(['edge-1', 's1', false]), true).change).toBe('runtime');
  });

  it('says when nothing changes, when there is no node, and when the change would not render', () => {
    expect(classifyChange(before, before, false).change).toBe('none');
    expect(describeClassification(classifyChange(null, plan(), true), 0)).toBe('(no proxy nodes yet)');
    expect(describeClassification(classifyChange(before, plan(['edge-1', null]), true), 1)).toBe(
      '(would not render on edge-1: haproxy -c failed)',
    );
  });
});
