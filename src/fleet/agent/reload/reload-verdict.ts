import type { ProcList } from '../../replies/show-proc.js';

export type ReloadVerdict =
  | { readonly state: 'pending' }
  | { readonly state: 'reloaded'; readonly workers: readonly number[] }
  | { readonly state: 'failed'; readonly message: string };

const PENDING: ReloadVerdict = { state: 'pending' };

const currentWorkers = (procs: ProcList): number[] => procs.workers.filter((w) => w.current).map((w) => w.pid);

/**
 * Judges a HAProxy master-worker reload from `show proc` before and after it (2.6's `reload`
 * prints nothing). The master counts every reload attempt; a reload worked when a current worker
 * exists that was not there before, and failed when the failed count grew (it resets to 0 after
 * a successful reload, so only growth means failure) or the attempt was counted without a new
 * worker. Until the master has counted the attempt the answer is pending.
 */
export function judgeHaproxyReload(before: ProcList, after: ProcList): ReloadVerdict {
  const old = new Set(currentWorkers(before));
  const fresh = currentWorkers(after).filter((pid) => !old.has(pid));
  const failedBefore = before.master.failedReloads ?? 0;
  const failedAfter = after.master.failedReloads ?? 0;
  if (after.master.pid !== before.master.pid) {
    // Someone restarted haproxy: whatever runs now read the files on disk at its start.
    return fresh.length > 0 ? { state: 'reloaded', workers: fresh } : PENDING;
  }
  if (after.master.reloads <= before.master.reloads) return PENDING;
  if (failedAfter > failedBefore) {
    const serving = currentWorkers(after);
    return {
      state: 'failed',
      message:
        `haproxy refused the new configuration at reload (show proc: ${failedAfter} failed reload${failedAfter === 1 ? '' : 's'}; ` +
        `worker ${serving.join(', ') || '(none)'} keeps serving the previous configuration). haproxy -c accepted the files, so the ` +
        'cause is at start-up on this node (a listener that cannot bind, a file haproxy cannot read, a limit); haproxy 2.6 does ' +
        "not say which through its CLI: its own log (the master's stderr, e.g. journalctl -u haproxy) has the reason",
    };
  }
  if (fresh.length > 0) return { state: 'reloaded', workers: fresh };
  return PENDING;
}

/** What an NGINX reload left behind: the master's worker processes and what it logged since the signal. */
export interface NginxObservation {
  /** The master: only its own messages speak about the reload. */
  readonly master: number;
  /** Workers not shutting down, before the signal. */
  readonly workersBefore: readonly number[];
  /** The same, now. */
  readonly workersNow: readonly number[];
  /** Error log text written since the signal. */
  readonly logSince: string;
}

/**
 * NGINX answers SIGHUP with nothing: a refused configuration shows as an `[emerg]` (or alert,
 * crit) line of the master's in the error log with the old workers still serving; a good one
 * as a set of workers none of which existed before (the old ones turn into "shutting down").
 * Workers' own complaints (`[alert] 12#12: setrlimit(RLIMIT_NOFILE, ...) failed` when the
 * hard limit is lower than worker_rlimit_nofile) do not make a reload fail.
 */
export function judgeNginxReload(o: NginxObservation): ReloadVerdict {
  const failure = new RegExp(`\\[(?:emerg|alert|crit)\\] ${o.master}#`);
  const problems = o.logSince.split('\n').filter((line) => failure.test(line));
  if (problems.length > 0) {
    return { state: 'failed', message: `nginx refused the new configuration at reload:\n${problems.join('\n')}` };
  }
  const old = new Set(o.workersBefore);
  if (o.workersNow.length > 0 && o.workersNow.every((pid) => !old.has(pid)))
    return { state: 'reloaded', workers: [...o.workersNow] };
  return PENDING;
}
