/**
 * The one way code outside the composition root learns the time. Domain code takes a `Clock` (or a
 * plain `now` value) as an argument instead of reading the system clock, so its behaviour can be
 * tested at any instant without sleeping or faking globals.
 */
export interface Clock {
  /** Milliseconds since the epoch, as `Date.now()` gives. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to: for tests and for replaying a recorded run. */
export function manualClock(startMs = 0): Clock & { advance(ms: number): void; set(ms: number): void } {
  let t = startMs;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    set(ms: number) {
      t = ms;
    },
  };
}
