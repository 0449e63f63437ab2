import { describe, expect, it } from 'vitest';
import { BuildCoalescer } from '../../../../src/services/config/build-coalescer.js';

/** Builds that finish when the test says: each call is recorded with its node and its own resolve/reject. */
function controlledBuilds() {
  const started: { node: string; finish: (value: string) => void; fail: (error: Error) => void }[] = [];
  const build = (node: string) =>
    new Promise<string>((resolve, reject) => started.push({ node, finish: resolve, fail: reject }));
  return { started, coalescer: new BuildCoalescer(build) };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('BuildCoalescer', () => {
  it('when no build of the node runs, then a call starts one', async () => {
    const { started, coalescer } = controlledBuilds();
    const first = coalescer.run('edge-1');
    expect(started.map((s) => s.node)).toEqual(['edge-1']);
    expect(coalescer.isBuilding('edge-1')).toBe(true);
    started[0]!.finish('v1');
    await expect(first).resolves.toBe('v1');
    expect(coalescer.isBuilding('edge-1')).toBe(false);
  });

  it('when a burst of calls comes during a build, then they share one more build after it: two builds, not N', async () => {
    const { started, coalescer } = controlledBuilds();
    const first = coalescer.run('edge-1');
    const burst = [coalescer.run('edge-1'), coalescer.run('edge-1'), coalescer.run('edge-1')];
    expect(burst[1]).toBe(burst[0]);
    expect(started).toHaveLength(1);
    started[0]!.finish('v1');
    await first;
    await settle();
    expect(started).toHaveLength(2);
    started[1]!.finish('v2');
    await expect(Promise.all(burst)).resolves.toEqual(['v2', 'v2', 'v2']);
  });

  it('when the running build fails, then the chained build still runs', async () => {
    const { started, coalescer } = controlledBuilds();
    const first = coalescer.run('edge-1');
    const next = coalescer.run('edge-1');
    started[0]!.fail(new Error('haproxy -c failed'));
    await expect(first).rejects.toThrow('haproxy -c failed');
    await settle();
    started[1]!.finish('v2');
    await expect(next).resolves.toBe('v2');
  });

  it('builds different nodes side by side', () => {
    const { started, coalescer } = controlledBuilds();
    void coalescer.run('edge-1');
    void coalescer.run('edge-2');
    expect(started.map((s) => s.node)).toEqual(['edge-1', 'edge-2']);
  });
});
