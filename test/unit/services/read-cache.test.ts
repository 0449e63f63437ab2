import { describe, expect, it } from 'vitest';
import { ReadCache } from '../../../src/services/read-cache.js';

describe('ReadCache', () => {
  it('serves a second read from memory until a commit invalidates it', async () => {
    const cache = new ReadCache();
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache.get('k', load)).toBe(1);
    expect(await cache.get('k', load)).toBe(1);
    cache.invalidate();
    expect(await cache.get('k', load)).toBe(2);
  });

  it('does not store a read that overlapped an invalidation', async () => {
    const cache = new ReadCache();
    let release!: () => void;
    const slow = cache.get('k', () => new Promise<string>((ok) => (release = () => ok('old'))));
    cache.invalidate();
    release();
    expect(await slow).toBe('old');
    expect(await cache.get('k', async () => 'new')).toBe('new');
  });

  it('bypasses itself while disabled (notifications down) and starts empty when enabled again', async () => {
    const cache = new ReadCache(10, false);
    let loads = 0;
    await cache.get('k', async () => ++loads);
    await cache.get('k', async () => ++loads);
    expect(loads).toBe(2);
    cache.setEnabled(true);
    await cache.get('k', async () => ++loads);
    await cache.get('k', async () => ++loads);
    expect(loads).toBe(3);
  });

  it('never caches a miss (undefined) so a created resource shows up', async () => {
    const cache = new ReadCache();
    expect(await cache.get('k', async () => undefined)).toBeUndefined();
    expect(await cache.get('k', async () => 'created')).toBe('created');
  });
});
