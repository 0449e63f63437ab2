/** What the agent knows about a set of files: the hashes the control plane gave them. */
export interface ConfigHashes {
  readonly contentHash: string;
  /** Changes only when the files need a reload; equal to contentHash on a node without a runtime address. */
  readonly structuralHash: string;
}

export type ApplyAction = 'reload' | 'files';

export interface ApplyDecision {
  readonly action: ApplyAction;
  /** In words, for the log line. */
  readonly reason: string;
}

/**
 * Whether new files need a reload. Only a structural change does: weights, states, caps, map
 * entries and certificate contents were already pushed through the HAProxy Runtime API (members,
 * weights, states, checks and caps through NGINX's runtime channel), so the files are written for
 * the next reload and the running workers are left alone. `running` is
 * the release the proxy loaded (null when unknown); nothing is reloaded when no proxy runs,
 * because it reads the new files when it starts.
 */
export function decideApply(running: ConfigHashes | null, next: ConfigHashes, proxyRunning: boolean): ApplyDecision {
  if (!proxyRunning) return { action: 'files', reason: 'no proxy is running; it loads these files when it starts' };
  if (running === null)
    return { action: 'reload', reason: 'the running files are not from a release this agent knows' };
  if (running.structuralHash !== next.structuralHash) return { action: 'reload', reason: 'structural change' };
  return { action: 'files', reason: 'runtime-only change, already applied through the Runtime API' };
}
