import { countersOf, ratesBetween, sampleKey, type Counters, type Rates, type StatSample } from './stats.js';

/**
 * One node's samples summed over its HAProxy workers, pure. After a master-worker reload the old
 * worker keeps serving the sessions it holds until they end: the node's load is the current
 * worker's plus every old one's. Counters are per process, so rates are each worker's own delta
 * against that same worker's previous read, then summed.
 */

/** What one worker's `show stat` gave; pid null when it is not known (no master CLI). */
export interface WorkerSamples {
  readonly pid: number | null;
  readonly samples: readonly StatSample[];
}

/** One worker's counters at the previous read, by sampleKey: the baseline of its next rates. */
export interface WorkerCounters {
  readonly pid: number | null;
  readonly current: boolean;
  readonly counters: ReadonlyMap<string, Counters>;
}

export interface MergedSamples {
  readonly samples: StatSample[];
  /** Keep for the next read's `previous`. */
  readonly workers: WorkerCounters[];
}

const ZERO: Counters = countersOf(() => 0);

/**
 * Merges the current worker's samples with the old workers' (`old`, as `show proc` lists them)
 * into one sample per object: sessions, session rate and counters are summed; the cap
 * (`sessionLimit`) is the current worker's, the one that admits new sessions, and null for an
 * object only old workers still have; status is the current worker's, else the first old one's.
 * Rates are null where no worker has a baseline (`previous` undefined or `elapsedS` not positive:
 * the first read). A worker that exited contributes nothing; an old worker listed with the current
 * worker's pid (a reload between the two reads) is left out so nothing is counted twice.
 */
export function mergeWorkerSamples(
  current: WorkerSamples,
  old: readonly WorkerSamples[],
  previous: readonly WorkerCounters[] | undefined,
  elapsedS: number,
): MergedSamples {
  const workers = [{ ...current, current: true }];
  const seen = new Set<number>(current.pid === null ? [] : [current.pid]);
  for (const w of old) {
    if (w.pid === null || seen.has(w.pid)) continue;
    seen.add(w.pid);
    workers.push({ ...w, current: false });
  }

  const merged = new Map<string, { sample: StatSample; fromCurrent: boolean; counters: Counters; rates: Rates }>();
  for (const worker of workers) {
    const baseline = previous === undefined ? undefined : baselineOf(worker, previous);
    for (const s of worker.samples) {
      const key = sampleKey(s);
      const rates =
        baseline === undefined
          ? null
          : ratesBetween(s.counters, baseline === 'zero' ? ZERO : baseline.get(key), elapsedS);
      const into = merged.get(key);
      if (into === undefined) {
        merged.set(key, {
          sample: worker.current ? s : { ...s, sessionLimit: null },
          fromCurrent: worker.current,
          counters: s.counters,
          rates,
        });
        continue;
      }
      into.sample = {
        ...into.sample,
        sessions: into.sample.sessions + s.sessions,
        sessionRate: into.sample.sessionRate + s.sessionRate,
      };
      into.counters = addCounters(into.counters, s.counters);
      into.rates = addRates(into.rates, rates);
    }
  }
  return {
    samples: [...merged.values()].map((m) => ({ ...m.sample, counters: m.counters, rates: m.rates })),
    workers: workers.map((w) => ({
      pid: w.pid,
      current: w.current,
      counters: new Map(w.samples.map((s) => [sampleKey(s), s.counters])),
    })),
  };
}

/**
 * The counters a worker's deltas are taken against: the same process's previous read when its pid
 * was read before; for the current worker, 'zero' when the previous current worker was another
 * known process (a reload since, so the new one counted from 0), else the previous current
 * worker's counters (pid unknown: a counter that went down reads as a reset, as it always did);
 * undefined for an old worker seen for the first time (no rates of its own this read).
 */
function baselineOf(
  worker: WorkerSamples & { current: boolean },
  previous: readonly WorkerCounters[],
): ReadonlyMap<string, Counters> | 'zero' | undefined {
  if (worker.pid !== null) {
    const same = previous.find((p) => p.pid === worker.pid);
    if (same !== undefined) return same.counters;
  }
  if (!worker.current) return undefined;
  const before = previous.find((p) => p.current);
  if (before === undefined) return undefined;
  return worker.pid !== null && before.pid !== null ? 'zero' : before.counters;
}

function addCounters(a: Counters, b: Counters): Counters {
  return countersOf((k) => a[k] + b[k]);
}

/** Sums the rates the workers have; null only when none has any. */
function addRates(a: Rates, b: Rates): Rates {
  if (a === null) return b;
  if (b === null) return a;
  return addCounters(a, b);
}
