import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { showProc } from '../../src/fleet/runtime-api/commands/master-commands.js';
import { OneShotRuntimeClient } from '../../src/fleet/runtime-api/one-shot-runtime-client.js';
import { parseShowProc } from '../../src/fleet/replies/show-proc.js';
import { parseServersState, type ServerStateRow } from '../../src/fleet/replies/show-servers-state.js';
import { parseShowStat, type StatRow } from '../../src/fleet/replies/show-stat.js';
import type { Caller } from '../support/app.js';
import { poll } from '../support/poll.js';
import { freePort, runtimeCommand, startHaproxy, type RunningHaproxy } from './haproxy-render-support.js';

/**
 * One HAProxy node on loopback, run the way the agent would run it (master-worker with its master
 * CLI on `<socketDir>/master.sock`, the files the control plane renders for the node) but driven
 * by the test: it writes the files, starts and stops the process it spawned (by PID), and reads the
 * live state back through the local admin socket, as an operator on the node would. The control
 * plane reaches it only through the mTLS listener on `statsPort` (its runtimeAddress); created with
 * `{ master: true }`, it also registers a masterAddress, whose mTLS listener forwards to the master CLI.
 */
export class ProxyNode {
  private process: RunningHaproxy | null = null;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly statsPort: number,
    readonly masterPort: number | null = null,
  ) {}

  static async create(name: string, options: { master?: boolean } = {}): Promise<ProxyNode> {
    const dir = await mkdtemp(join(tmpdir(), `sy-${name}-`));
    await mkdir(join(dir, 'sockets'), { mode: 0o700 });
    return new ProxyNode(name, dir, await freePort('127.0.0.1'), options.master ? await freePort('127.0.0.1') : null);
  }

  /** Where HAProxy keeps its unix sockets: the node's socketDir. */
  get socketDir(): string {
    return join(this.dir, 'sockets');
  }

  /** The local admin socket (`stats socket ... level admin mode 600`). */
  get adminSocket(): string {
    return join(this.socketDir, 'admin.sock');
  }

  get masterSocket(): string {
    return join(this.socketDir, 'master.sock');
  }

  /** What to register: the node's Runtime API (and master CLI) and the directory its config refers to. */
  registration(): Record<string, unknown> {
    return {
      name: this.name,
      kind: 'haproxy',
      runtimeAddress: { host: '127.0.0.1', port: this.statsPort },
      ...(this.masterPort !== null && { masterAddress: { host: '127.0.0.1', port: this.masterPort } }),
      capacity: { vcpu: 1, memoryMb: 512 },
      configDir: this.dir,
      socketDir: this.socketDir,
    };
  }

  /** Fetches the node's current config, writes it, and reports it applied (what the agent does). */
  async install(admin: Caller): Promise<{ revision: number; contentHash: string }> {
    const res = await admin('GET', `/v1/nodes/${this.name}/config`);
    if (res.status !== 200) throw new Error(`config of ${this.name}: ${res.status} ${JSON.stringify(res.body)}`);
    for (const [file, content] of Object.entries(res.body.files as Record<string, string>)) {
      await mkdir(dirname(join(this.dir, file)), { recursive: true });
      await writeFile(join(this.dir, file), content);
    }
    const report = await admin('POST', `/v1/nodes/${this.name}/status`, {
      event: 'applied',
      contentHash: res.body.contentHash,
      revision: res.body.revision,
      reloaded: false,
    });
    if (report.status !== 200) throw new Error(`report of ${this.name}: ${report.status}`);
    return { revision: res.body.revision, contentHash: res.body.contentHash };
  }

  async start(): Promise<void> {
    const running = startHaproxy(join(this.dir, 'haproxy.cfg'), ['-S', this.masterSocket]);
    this.process = running;
    // Up once its worker answers on the admin socket.
    await poll(() => this.workerPid(), { timeout: 5000, interval: 50 }).catch((err: unknown) => {
      throw new Error(`${this.name} did not start: ${running.output()}`, { cause: err });
    });
  }

  /** Master-worker reload (SIGUSR2 to the master, which the process was started as): new worker, new files. */
  async reload(): Promise<void> {
    if (!this.process) throw new Error(`${this.name} is not running`);
    const running = this.process;
    const before = await this.workerPid();
    process.kill(running.pid, 'SIGUSR2');
    // Reloaded once another worker answers on the admin socket.
    await poll(async () => ((await this.workerPid()) !== before ? true : undefined), {
      timeout: 10_000,
      interval: 2,
    }).catch((err: unknown) => {
      throw new Error(`${this.name} did not reload: ${running.output().slice(-2000)}`, { cause: err });
    });
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = null;
  }

  async remove(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The worker's PID (a reload would start a new worker). */
  async workerPid(): Promise<number> {
    const m = /^Pid: (\d+)$/m.exec(await runtimeCommand(this.adminSocket, 'show info', 1000));
    if (!m) throw new Error('no Pid in show info');
    return Number(m[1]);
  }

  /** The PIDs of the workers still finishing their sessions after a reload. */
  async oldWorkers(): Promise<number[]> {
    const [reply] = await new OneShotRuntimeClient(
      { path: this.masterSocket },
      { target: 'master', commandTimeoutMs: 1000 },
    ).execute([showProc()]);
    if (reply?.status !== 'ok') throw new Error(`show proc on ${this.name}: ${reply?.message ?? 'no reply'}`);
    return parseShowProc(reply.output)
      .workers.filter((w) => !w.current)
      .map((w) => w.pid);
  }

  async servers(backend: string): Promise<ServerStateRow[]> {
    return parseServersState(await runtimeCommand(this.adminSocket, `show servers state ${backend}`, 1000));
  }

  async stats(): Promise<StatRow[]> {
    return parseShowStat(await runtimeCommand(this.adminSocket, 'show stat', 1000));
  }
}
