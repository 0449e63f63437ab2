import { RuntimeParseError } from './runtime-parse-error.js';

export interface ProcEntry {
  readonly pid: number;
  readonly type: string;
  /** For the master, reloads since it started; for a worker, reloads it has lived through. */
  readonly reloads: number;
  readonly uptimeSec: number;
  readonly version: string;
}

export interface ProcList {
  readonly master: ProcEntry & { readonly failedReloads: number | null };
  /** Current workers first, then workers still finishing their connections after a reload. */
  readonly workers: readonly (ProcEntry & { readonly current: boolean })[];
  readonly programs: readonly ProcEntry[];
}

/** Parses the master CLI's `show proc`; 2.6 prints `<reloads> [failed: N]` for the master. */
export function parseShowProc(text: string): ProcList {
  let section = 'master';
  let master: ProcList['master'] | null = null;
  const workers: (ProcEntry & { current: boolean })[] = [];
  const programs: ProcEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#<PID>') || line.trim() === '') continue;
    if (line.startsWith('#')) {
      section = line.slice(1).trim();
      continue;
    }
    const m = /^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed: (\d+)\])?\s+(\S+)\s*(\S*)/.exec(line);
    if (!m) throw new RuntimeParseError('show proc', `unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    const entry = {
      pid: Number(m[1]),
      type: m[2]!,
      reloads: Number(m[3]),
      uptimeSec: parseUptime(m[5]!),
      version: m[6] ?? '',
    };
    if (entry.type === 'master') master = { ...entry, failedReloads: m[4] === undefined ? null : Number(m[4]) };
    else if (section === 'programs') programs.push(entry);
    else workers.push({ ...entry, current: section === 'workers' });
  }
  if (master === null) throw new RuntimeParseError('show proc', 'no master line');
  return { master, workers, programs };
}

/** `0d00h00m21s` → 21. */
export function parseUptime(text: string): number {
  const m = /^(\d+)d(\d+)h(\d+)m(\d+)s$/.exec(text);
  if (!m) return NaN;
  return ((Number(m[1]) * 24 + Number(m[2])) * 60 + Number(m[3])) * 60 + Number(m[4]);
}
