import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../../src/util/semaphore.js';

/** A task that runs until the test finishes it, recording when it started. */
function task(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return {
    finish,
    run: async () => {
      log.push(name);
      await done;
      return name;
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('Semaphore', () => {
  it('when more tasks come than its limit, then the rest wait and start in the order they came as slots free', async () => {
    const semaphore = new Semaphore(2);
    const started: string[] = [];
    const tasks = ['a', 'b', 'c', 'd'].map((n) => task(started, n));
    const results = tasks.map((t) => semaphore.run(t.run));
    await settle();
    expect(started).toEqual(['a', 'b']);
    tasks[1]!.finish();
    await settle();
    expect(started).toEqual(['a', 'b', 'c']);
    tasks[0]!.finish();
    await settle();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    tasks[2]!.finish();
    tasks[3]!.finish();
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c', 'd']);
  });

  it('when a task fails, then its slot is freed and the failure goes to its caller', async () => {
    const semaphore = new Semaphore(1);
    const failed = semaphore.run(async () => {
      throw new Error('validator crashed');
    });
    await expect(failed).rejects.toThrow('validator crashed');
    await expect(semaphore.run(async () => 'next')).resolves.toBe('next');
  });
});
