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

/** True when `cronEvery` accepts the interval (config validation). */
export const isSchedulable = (seconds: number): boolean => {
  try {
    cronEvery(seconds);
    return true;
  } catch {
    return false;
  }
};
