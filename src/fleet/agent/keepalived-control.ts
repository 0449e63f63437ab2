import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../logger.js';
import { readProcessTitle } from './process-table.js';
import type { Result } from '../../util/result.js';

/** What the agent does with keepalived: prove a file with the real binary, make the running daemon read it again. */
export interface KeepalivedControl {
  /** `keepalived -t -f <file>`; never throws for a bad file. */
  validate(file: string): Promise<Result>;
  /** SIGHUP to the daemon in the pid file: it reads `-f` (the configDir symlink) again, keeping its instances' states. */
  reload(): Promise<KeepalivedReload>;
}

export type KeepalivedReload =
  | { readonly status: 'reloaded'; readonly pid: number }
  /** No keepalived runs: it reads the files when it starts. */
  | { readonly status: 'not-running'; readonly pidFile: string };

export interface KeepalivedOptions {
  readonly bin: string;
  /** keepalived's `-p` pid file (its parent process). */
  readonly pidFile: string;
  /**
   * The network namespace keepalived runs in (`keepalived -s NAME`), or null for the agent's own.
   * `keepalived -t` checks that the interfaces exist, so it must look where keepalived runs.
   */
  readonly namespace: string | null;
  readonly timeoutMs?: number;
}

export class KeepalivedProcess implements KeepalivedControl {
  constructor(
    private readonly options: KeepalivedOptions,
    private readonly logger: Logger,
  ) {}

  validate(file: string): Promise<Result> {
    const args = [...(this.options.namespace === null ? [] : ['-s', this.options.namespace]), '-t', '-f', file];
    return new Promise((resolve) => {
      execFile(this.options.bin, args, { timeout: this.options.timeoutMs ?? 30_000 }, (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim();
        if (error === null) return resolve({ ok: true, output });
        const code = typeof error.code === 'number' ? `exited with ${error.code}` : error.message;
        resolve({ ok: false, message: `keepalived -t refused ${file} (${code})${output ? `:\n${output}` : ''}` });
      });
    });
  }

  async reload(): Promise<KeepalivedReload> {
    const pid = await this.daemonPid();
    if (pid === null) return { status: 'not-running', pidFile: this.options.pidFile };
    try {
      process.kill(pid, 'SIGHUP');
    } catch (error) {
      // Gone between the look and the signal: it reads the files when it starts again.
      if ((error as NodeJS.ErrnoException).code === 'ESRCH')
        return { status: 'not-running', pidFile: this.options.pidFile };
      throw error;
    }
    this.logger.debug({ pid }, 'keepalived told to reload (SIGHUP)');
    return { status: 'reloaded', pid };
  }

  /** The pid in the pid file when that process is a keepalived (a stale file may name a reused pid). */
  private async daemonPid(): Promise<number | null> {
    const text = await readFile(this.options.pidFile, 'utf8').catch(() => null);
    const pid = text === null ? NaN : Number(text.trim());
    if (!Number.isInteger(pid) || pid < 2) return null;
    const title = await readProcessTitle(pid);
    return title !== null && /(^|\/)keepalived(\s|$)/.test(title) ? pid : null;
  }
}
