import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LongPollWakeups } from '../../../../src/services/config/long-poll-wakeups.js';

/** Whether the promise has settled, looked at after pending microtasks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

describe('LongPollWakeups', () => {
  let changes: EventEmitter;
  let wakeups: LongPollWakeups;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    changes = new EventEmitter();
    wakeups = new LongPollWakeups(changes);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('when a build of the node is stored, then its waits end, and other nodes’ do not', async () => {
    const edge1 = wakeups.next('edge-1', Date.now() + 30_000);
    const edge2 = wakeups.next('edge-2', Date.now() + 30_000);
    wakeups.buildStored('edge-1');
    expect(await settled(edge1)).toBe(true);
    expect(await settled(edge2)).toBe(false);
  });

  it('when a write commits, then every wait ends, and no listener is left on the change feed', async () => {
    const waits = [wakeups.next('edge-1', Date.now() + 30_000), wakeups.next('edge-2', Date.now() + 30_000)];
    expect(changes.listenerCount('change')).toBe(2);
    changes.emit('change');
    expect(await settled(Promise.all(waits))).toBe(true);
    expect(changes.listenerCount('change')).toBe(0);
  });

  it('when nothing happens, then a wait ends after a second (a build on another replica wakes nobody here), or at its deadline when sooner', async () => {
    const long = wakeups.next('edge-1', Date.now() + 30_000);
    const short = wakeups.next('edge-2', Date.now() + 300);
    await vi.advanceTimersByTimeAsync(299);
    expect(await settled(short)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(short)).toBe(true);
    await vi.advanceTimersByTimeAsync(699);
    expect(await settled(long)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(long)).toBe(true);
  });

  it('when the caller aborts, then its wait ends at once', async () => {
    const abort = new AbortController();
    const wait = wakeups.next('edge-1', Date.now() + 30_000, abort.signal);
    abort.abort();
    expect(await settled(wait)).toBe(true);
  });

  it('when the process stops, then every wait ends and it says so', async () => {
    const wait = wakeups.next('edge-1', Date.now() + 30_000);
    expect(wakeups.closed).toBe(false);
    wakeups.close();
    expect(wakeups.closed).toBe(true);
    expect(await settled(wait)).toBe(true);
    expect(changes.listenerCount('change')).toBe(0);
  });
});
