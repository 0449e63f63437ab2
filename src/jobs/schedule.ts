import cron from 'node-cron';

/** A repeating job; `stop()` resolves once the run in flight, if any, has ended. */
export interface Scheduled {
  stop(): Promise<void>;
}

/**
 * The cron expression that fires every `seconds`, aligned to the clock: a divisor of a minute
 * (`*∕10 * * * * *`) or a whole number of minutes dividing an hour. Anything else is refused at
 * setup: cron cannot fire at an even pace for, say, every 7 seconds.
 */
export function cronEvery(seconds: number): string {
  if (Number.isInteger(seconds) && seconds >= 1 && seconds < 60 && 60 % seconds === 0) return `*/${seconds} * * * * *`;
  const minutes = seconds / 60;
  if (Number.isInteger(minutes) && minutes >= 1 && minutes <= 60 && 60 % minutes === 0) return `0 */${minutes} * * * *`;
  throw new RangeError(`cannot run every ${seconds} s: use a divisor of 60 seconds or of 60 minutes`);
}

/** True when `every(seconds, …)` accepts the interval (config validation). */
export const isSchedulable = (seconds: number): boolean => {
  try {
    cronEvery(seconds);
    return true;
  } catch {
    return false;
  }
};

/**
 * Runs `fn` every `seconds` (see cronEvery). A tick that comes while the previous run is still
 * in flight is skipped, not queued. `fn` is expected to handle its own errors; one that escapes
 * goes to `onError` and the schedule carries on.
 */
export function every(seconds: number, fn: () => Promise<void>, onError: (err: unknown) => void = () => undefined): Scheduled {
  let running: Promise<void> | null = null;
  let stopped = false;
  const task = cron.createTask(
    cronEvery(seconds),
    () => {
      if (stopped || running !== null) return;
      running = fn()
        .catch(onError)
        .finally(() => (running = null));
    },
    { unref: true },
  );
  void task.start();
  return {
    stop: async () => {
      stopped = true;
      await task.destroy();
      await running;
    },
  };
}
