/**
 * Names of the agent's release directories, pure. A release is `<UTC time>-<hash prefix>`: names
 * sort by age, and a config that comes back (A, B, then A again) gets a fresh directory instead of
 * rewriting one that may be the rollback target. A rejected one is kept as `<name>.failed`.
 */

const STAMP_RE = /^\d{8}T\d{9}Z$/;
const RELEASE_RE = /^\d{8}T\d{9}Z-(?:[0-9a-f]{16}|adopted)(?:-\d+)?$/;
const FAILED_SUFFIX = '.failed';

/** `/etc/switchyard` → `/etc/switchyard.releases`: a sibling, so the symlink flip stays on one file system. */
export function releasesDirOf(configDir: string): string {
  return `${configDir.replace(/\/+$/, '')}.releases`;
}

/** `20261126T154801123Z`: ISO 8601 basic format to the millisecond, sortable as text. */
export function releaseStamp(now: Date): string {
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  if (!STAMP_RE.test(stamp)) throw new Error(`cannot stamp ${now.toISOString()}`);
  return stamp;
}

/** The release for a content hash staged at `now`; `attempt` > 0 only when that name is taken. */
export function releaseName(contentHash: string, now: Date, attempt = 0): string {
  if (!/^[0-9a-f]{64}$/.test(contentHash)) throw new Error(`not a content hash: ${contentHash}`);
  return `${releaseStamp(now)}-${contentHash.slice(0, 16)}${attempt > 0 ? `-${attempt}` : ''}`;
}

/** A directory that held files before the agent managed them, kept as the first release. */
export function adoptedReleaseName(now: Date): string {
  return `${releaseStamp(now)}-adopted`;
}

export function failedReleaseName(name: string): string {
  return `${name}${FAILED_SUFFIX}`;
}

export function isReleaseName(name: string): boolean {
  return RELEASE_RE.test(name);
}

export function isFailedReleaseName(name: string): boolean {
  return name.endsWith(FAILED_SUFFIX) && RELEASE_RE.test(name.slice(0, -FAILED_SUFFIX.length));
}

export interface PrunePolicy {
  /** Good releases to keep, newest first; protected ones are kept even when older. */
  readonly keep: number;
  /** Rejected releases to keep for inspection, newest first. */
  readonly keepFailed: number;
  /** Never removed: the active release and the last known good one. */
  readonly protect: readonly (string | null)[];
}

/**
 * Which entries of the releases directory to remove. Anything that is not a release name (a
 * file an operator put there, a staging directory in use) is never touched.
 */
export function releasesToPrune(entries: readonly string[], policy: PrunePolicy): string[] {
  const protect = new Set(policy.protect.filter((p): p is string => p !== null));
  const newestFirst = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);
  const good = entries.filter(isReleaseName).sort(newestFirst);
  const failed = entries.filter(isFailedReleaseName).sort(newestFirst);
  const doomed = [...good.slice(policy.keep).filter((name) => !protect.has(name)), ...failed.slice(policy.keepFailed)];
  return doomed.sort();
}
