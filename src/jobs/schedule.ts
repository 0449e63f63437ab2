import cron from 'node-cron';
import { cronEvery } from '../util/cron-every.js';

/** A repeating job; `stop()` resolves once the run in flight, if any, has ended. */
export interface Scheduled {
  stop(): Promise<void>;
}

/**
 * Runs `fn` every `seconds` (see cronEvery). A tick that comes while the previous run is still
 * in flight is skipped, not queued. `fn` is expected to handle its own errors; one that escapes
 * goes to `onError` and the schedule carries on.
 */
export function every(
  seconds: number,
  fn: () => Promise<void>,
  onError: (err: unknown) => void = () => undefined,
): Scheduled {
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
