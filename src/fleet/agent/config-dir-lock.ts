import { hostname } from 'node:os';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Who holds a config directory: enough to tell a live holder from one that died. */
export interface LockHolder {
  readonly pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not taken for it; null off Linux. */
  readonly startTicks: number | null;
  readonly host: string;
  readonly since: string;
}

/** Another live agent manages the directory; nothing was touched. */
export class ConfigDirLockedError extends Error {
  constructor(
    readonly configDir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `another agent (pid ${holder.pid} on ${holder.host}, since ${holder.since}) manages ${configDir}: ` +
        'stop it first, or give this agent another --config-dir',
    );
    this.name = 'ConfigDirLockedError';
  }
}

export const LOCK_FILE = '.agent.lock';
/** A lock file without a readable holder (a crash between creating and writing it) is stale after this. */
const UNREADABLE_STALE_MS = 10_000;

/**
 * One agent per config directory: `<configDir>.releases/.agent.lock`, created exclusively
 * (O_EXCL) and naming its holder. Two agents on one directory would undo each other's swaps, and
 * the second's start-up clean-up would delete the first's staging directory mid-apply. A lock
 * whose holder has died (its pid gone, or reused by a process started at another time) is taken
 * over; `release()` removes it when the agent stops. The one window left, two agents taking over
 * the same stale lock at the same instant, is closed by re-reading it after the take-over.
 */
export class ConfigDirLock {
  private held: string | null = null;

  constructor(
    private readonly releasesDir: string,
    private readonly configDir: string,
  ) {}

  get path(): string {
    return join(this.releasesDir, LOCK_FILE);
  }

  /** Takes the lock, or throws ConfigDirLockedError naming the live holder. Returns a dead holder it replaced. */
  async acquire(): Promise<{ replaced: LockHolder | null }> {
    const me = JSON.stringify(await selfHolder());
    let replaced: LockHolder | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await this.create(me)) {
        // A racer that judged the same stale lock dead may have removed ours and written its own.
        if ((await this.read()) !== me) continue;
        this.held = me;
        return { replaced };
      }
      const text = await this.read();
      if (text === null) continue; // released meanwhile
      const holder = parseHolder(text);
      if (holder === null) {
        const age =
          Date.now() -
          (await stat(this.path).then(
            (s) => s.mtimeMs,
            () => Date.now(),
          ));
        if (age < UNREADABLE_STALE_MS) throw new ConfigDirLockedError(this.configDir, unknownHolder());
      } else if (await isAlive(holder)) {
        throw new ConfigDirLockedError(this.configDir, holder);
      } else replaced = holder;
      // Stale: removed only if it is still the one judged (another agent may have replaced it).
      if ((await this.read()) === text) await unlink(this.path).catch(() => {});
    }
    throw new Error(`could not take ${this.path}: other agents kept replacing it; start one agent per --config-dir`);
  }

  /** Removes the lock if this process still holds it. */
  async release(): Promise<void> {
    if (this.held === null) return;
    const text = await this.read();
    if (text === this.held) await unlink(this.path).catch(() => {});
    this.held = null;
  }

  /** The lock file's text, or null when there is none. */
  private read(): Promise<string | null> {
    return readFile(this.path, 'utf8').catch(() => null);
  }

  private async create(content: string): Promise<boolean> {
    const handle = await open(this.path, 'wx', 0o644).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return null;
      throw error;
    });
    if (handle === null) return false;
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return true;
  }
}

async function selfHolder(): Promise<LockHolder> {
  return {
    pid: process.pid,
    startTicks: await startTicks(process.pid),
    host: hostname(),
    since: new Date().toISOString(),
  };
}

function unknownHolder(): LockHolder {
  return { pid: 0, startTicks: null, host: 'unknown (the lock is being written)', since: 'just now' };
}

function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isInteger(v.pid) || typeof v.host !== 'string' || typeof v.since !== 'string') return null;
    return {
      pid: v.pid!,
      startTicks: Number.isInteger(v.startTicks) ? v.startTicks! : null,
      host: v.host,
      since: v.since,
    };
  } catch {
    return null;
  }
}

/** The start time of a process in clock ticks after boot (field 22 of /proc/<pid>/stat), or null. */
export async function startTicks(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (text === null) return null;
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  return Number.isInteger(ticks) ? ticks : null;
}

/** Whether the holder still runs. A holder on another host cannot be checked, so it counts as alive. */
async function isAlive(holder: LockHolder): Promise<boolean> {
  if (holder.host !== hostname()) return true;
  if (holder.pid === process.pid && holder.startTicks === (await startTicks(process.pid))) return true;
  // With /proc, a pid that runs a process started at another time is not the holder (a reused pid).
  if (holder.startTicks !== null && (await startTicks(process.pid)) !== null) {
    return (await startTicks(holder.pid)) === holder.startTicks;
  }
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
