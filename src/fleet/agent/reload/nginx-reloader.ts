import { copyFile, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../logger.js';
import { NGINX_FILES } from '../../../domain/config-files.js';
import { childProcesses, readProcessTitle } from '../process-table.js';
import type { ProxyReloader, ReloadOutcome, SwapContext } from './proxy-reloader.js';
import { judgeNginxReload } from './reload-verdict.js';

export interface NginxReloaderOptions {
  /** nginx runs as `nginx -c <configDir>/nginx.conf -p <configDir>/`; its pid file is `<configDir>/nginx.pid`. */
  readonly configDir: string;
  readonly reloadTimeoutMs?: number;
  readonly pollMs?: number;
}

/**
 * Reloads NGINX with SIGHUP to the master named in its pid file (what `nginx -s reload` does,
 * without parsing the config again) and proves it from the outside: new workers, or an
 * `[emerg]` line in the error log the master still writes to, with the old workers serving.
 */
export class NginxReloader implements ProxyReloader {
  private readonly reloadTimeoutMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly options: NginxReloaderOptions,
    private readonly logger: Logger,
  ) {
    this.reloadTimeoutMs = options.reloadTimeoutMs ?? 30_000;
    this.pollMs = options.pollMs ?? 100;
  }

  async running(): Promise<boolean> {
    return (await this.masterPid(this.options.configDir)) !== null;
  }

  /**
   * nginx rewrites its pid file only when the pid path changes, and ours never does (it goes
   * through the configDir symlink): the running master's pid file is carried into each release.
   */
  async prepare({ stagedDir, activeDir }: SwapContext): Promise<void> {
    if (activeDir === null) return;
    await copyFile(join(activeDir, NGINX_FILES.pid), join(stagedDir, NGINX_FILES.pid)).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      },
    );
  }

  async reload(previousDir: string | null): Promise<ReloadOutcome> {
    const pid = await this.masterPid(this.options.configDir);
    if (pid === null)
      return { ok: false, message: `no nginx master found through ${join(this.options.configDir, NGINX_FILES.pid)}` };
    // A refused reload is logged to the new release's error log (nginx opens it before it binds),
    // or to the one the master opened from the release it runs: watch both.
    const logs = [
      ...new Set([
        join(this.options.configDir, NGINX_FILES.errorLog),
        join(previousDir ?? this.options.configDir, NGINX_FILES.errorLog),
      ]),
    ];
    const offsets = await Promise.all(
      logs.map((log) =>
        stat(log).then(
          (s) => s.size,
          () => 0,
        ),
      ),
    );
    const workersBefore = await this.workers(pid);
    try {
      process.kill(pid, 'SIGHUP');
    } catch (error) {
      return { ok: false, message: `cannot signal the nginx master ${pid}: ${(error as Error).message}` };
    }
    const deadline = Date.now() + this.reloadTimeoutMs;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, this.pollMs));
      const logSince = (await Promise.all(logs.map((log, i) => readFrom(log, offsets[i]!)))).join('');
      const verdict = judgeNginxReload({ master: pid, workersBefore, workersNow: await this.workers(pid), logSince });
      if (verdict.state === 'reloaded') return { ok: true, detail: `new workers ${verdict.workers.join(', ')}` };
      if (verdict.state === 'failed') return { ok: false, message: verdict.message };
    }
    this.logger.warn({ pid, logs }, 'nginx showed neither new workers nor an error after SIGHUP');
    return {
      ok: false,
      message: `nginx master ${pid} started no new workers within ${this.reloadTimeoutMs} ms of SIGHUP; see ${logs.join(' and ')}`,
    };
  }

  /** The master's pid from the pid file under `dir`, when that process is an nginx master. */
  private async masterPid(dir: string): Promise<number | null> {
    const text = await readFile(join(dir, NGINX_FILES.pid), 'utf8').catch(() => null);
    const pid = text === null ? NaN : Number(text.trim());
    if (!Number.isInteger(pid) || pid < 2) return null;
    const title = await readProcessTitle(pid);
    return title?.startsWith('nginx: master process') ? pid : null;
  }

  /** Workers serving new connections: not the ones "shutting down" after a reload, not cache helpers. */
  private async workers(master: number): Promise<number[]> {
    return (await childProcesses(master)).filter((p) => p.title === 'nginx: worker process').map((p) => p.pid);
  }
}

/** Text appended to a file since `offset` (at most 64 KiB of it). */
async function readFrom(path: string, offset: number): Promise<string> {
  const handle = await open(path, 'r').catch(() => null);
  if (handle === null) return '';
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}
