import { describe, expect, it } from 'vitest';
import { decideApply } from '../../../../src/fleet/agent/apply-decision.js';

const a = { contentHash: 'c1', structuralHash: 's1' };

describe('reload or files only', () => {
  it('when only the content changes (weights, states, caps), then files are written and nothing reloads', () => {
    expect(decideApply(a, { contentHash: 'c2', structuralHash: 's1' }, true)).toMatchObject({ action: 'files' });
  });

  it('when the structure changes, then the proxy reloads', () => {
    expect(decideApply(a, { contentHash: 'c2', structuralHash: 's2' }, true)).toMatchObject({
      action: 'reload',
      reason: 'structural change',
    });
  });

  it('when no proxy runs, then files are written only: it reads them when it starts', () => {
    expect(decideApply(a, { contentHash: 'c2', structuralHash: 's2' }, false)).toMatchObject({ action: 'files' });
    expect(decideApply(null, a, false)).toMatchObject({ action: 'files' });
  });

  it('when the running files are unknown (first apply beside a running proxy), then it reloads', () => {
    expect(decideApply(null, a, true)).toMatchObject({ action: 'reload' });
  });
});
