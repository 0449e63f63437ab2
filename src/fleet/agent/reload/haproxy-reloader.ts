import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../../../logger.js';
import { HAPROXY_FILES } from '../../../domain/config-files.js';
import { writeFileIn } from '../agent-store.js';
import { onWorker, reload as reloadCommand } from '../../runtime-api/commands/master-commands.js';
import { showServersState } from '../../runtime-api/commands/server-commands.js';
import { OneShotRuntimeClient } from '../../runtime-api/one-shot-runtime-client.js';
import type { ProcList } from '../../replies/show-proc.js';
import { parseServersState } from '../../replies/show-servers-state.js';
import type { ProxyReloader, ReloadOutcome, SwapContext } from './proxy-reloader.js';
import { judgeHaproxyReload } from './reload-verdict.js';
import { createMasterApi } from '../../runtime-api/runtime-api.js';
import type { RuntimeMaster } from '../../runtime-api/runtime-api.js';

export interface HaproxyReloaderOptions {
  /** The master CLI socket: haproxy runs as `haproxy -W -S <masterSocket> -f <configDir>/haproxy.cfg`. */
  readonly masterSocket: string;
  /** How long a reload may take to show in `show proc` (10,000 backends took 2.5 s here). */
  readonly reloadTimeoutMs?: number;
  readonly pollMs?: number;
}

/** A state file with only its version line: what haproxy reads as "nothing known yet". */
const EMPTY_STATE = '1\n';

/**
 * Reloads HAProxy through its master CLI and proves the reload with `show proc`; before a
 * reload it saves `show servers state` into the new release, where `server-state-file` points,
 * so health and admin states survive the new worker's start.
 */
export class HaproxyReloader implements ProxyReloader {
  private readonly cli: OneShotRuntimeClient;
  private readonly master: RuntimeMaster;
  private readonly reloadTimeoutMs: number;
  private readonly pollMs: number;

  constructor(
    options: HaproxyReloaderOptions,
    private readonly logger: Logger,
  ) {
    this.cli = new OneShotRuntimeClient(
      { path: options.masterSocket },
      { target: 'master', connectTimeoutMs: 2_000, commandTimeoutMs: 10_000 },
    );
    this.master = createMasterApi(this.cli);
    this.reloadTimeoutMs = options.reloadTimeoutMs ?? 30_000;
    this.pollMs = options.pollMs ?? 100;
  }

  async running(): Promise<boolean> {
    return this.master.showProc().then(
      () => true,
      () => false,
    );
  }

  async prepare({ stagedDir, activeDir, reload }: SwapContext): Promise<void> {
    if (reload) {
      try {
        await writeFileIn(stagedDir, HAPROXY_FILES.serverState, await this.serversState());
        return;
      } catch (error) {
        // Not fatal: the new worker starts with every server in its configured state and checks decide.
        this.logger.warn(
          { err: error },
          'could not save show servers state before the reload; servers start from their configured state',
        );
      }
    }
    // No reload now, but a restart later reads this file: carry the last one over.
    const target = join(stagedDir, HAPROXY_FILES.serverState);
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    const carried =
      activeDir === null
        ? false
        : await copyFile(join(activeDir, HAPROXY_FILES.serverState), target).then(
            () => true,
            () => false,
          );
    if (!carried) await writeFileIn(stagedDir, HAPROXY_FILES.serverState, EMPTY_STATE);
  }

  async reload(): Promise<ReloadOutcome> {
    let before: ProcList;
    try {
      before = await this.master.showProc();
    } catch (error) {
      return { ok: false, message: `cannot reach the haproxy master CLI to reload: ${(error as Error).message}` };
    }
    const [sent] = await this.cli.execute([reloadCommand()]);
    if (sent!.status === 'not-executed')
      return { ok: false, message: `could not send reload to the haproxy master: ${sent!.message}` };
    if (sent!.status === 'error' && !/may or may not have been applied/.test(sent!.message)) {
      return { ok: false, message: `haproxy master refused reload: ${sent!.message}` };
    }
    const deadline = Date.now() + this.reloadTimeoutMs;
    let last: string = 'no answer from the master CLI yet';
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, this.pollMs));
      let after: ProcList;
      try {
        after = await this.master.showProc();
      } catch (error) {
        // The master re-executes itself to reload; its CLI is away for a moment.
        last = (error as Error).message;
        continue;
      }
      const verdict = judgeHaproxyReload(before, after);
      if (verdict.state === 'reloaded') return { ok: true, detail: `new worker ${verdict.workers.join(', ')}` };
      if (verdict.state === 'failed') return { ok: false, message: verdict.message };
      last = `master reloads ${after.master.reloads}, workers ${after.workers.map((w) => w.pid).join(', ')}`;
    }
    return {
      ok: false,
      message: `haproxy did not show a new worker within ${this.reloadTimeoutMs} ms after reload (${last})`,
    };
  }

  /** `show servers state` of the current worker, through the master CLI, checked before it is saved. */
  private async serversState(): Promise<string> {
    const procs = await this.master.showProc();
    const worker = procs.workers.find((w) => w.current);
    if (worker === undefined) throw new Error('show proc lists no current worker');
    const [result] = await this.cli.execute([onWorker(worker.pid, showServersState())]);
    if (result!.status !== 'ok') throw new Error(`show servers state: ${result!.message}`);
    parseServersState(result!.output);
    return `${result!.output}\n`;
  }
}
