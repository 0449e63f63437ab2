import { showProc } from './commands/master-commands.js';
import { onWorker } from './commands/master-commands.js';
import { parseShowProc } from '../replies/show-proc.js';
import type { RuntimeCommand } from './commands/runtime-command.js';
import type { RuntimeExecutor } from './runtime-executor.js';

/** Each old worker's raw reply to a worker read, or why the master could not give them. */
export type OldWorkerReplies =
  | { readonly ok: true; readonly workers: readonly { readonly pid: number; readonly output: string }[] }
  | { readonly ok: false; readonly error: string };

/** What the master answers `@!<pid>` for a worker that has exited since `show proc` listed it. */
const GONE = /Can't find the target PID/;

/**
 * Sends `command` (a worker read such as `show stat`) through the master CLI to every old worker
 * (one still finishing its sessions after a reload) that `show proc` lists, concurrently. The
 * current worker is the caller's, read through the Runtime API at the same time; `reached`
 * resolves to that worker's PID. Should a reload fall between the two reads, so that `show proc`
 * calls current a worker older than the one reached, that worker is read here as well. A worker
 * that exits between the steps is left out: it holds no sessions any more. Never rejects; answers
 * within `timeoutMs` (connections still open then are closed by the client's own timeouts).
 */
export async function readOldWorkers(
  master: RuntimeExecutor,
  command: RuntimeCommand,
  timeoutMs: number,
  reached: Promise<number | null>,
): Promise<OldWorkerReplies> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<OldWorkerReplies>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, error: `no answer from the master CLI within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([read(master, command, timeoutMs, reached), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function read(
  master: RuntimeExecutor,
  command: RuntimeCommand,
  timeoutMs: number,
  reached: Promise<number | null>,
): Promise<OldWorkerReplies> {
  const [proc] = await master.execute([showProc()], { timeoutMs });
  if (proc === undefined) return { ok: false, error: 'show proc: no reply' };
  if (proc.status !== 'ok') return { ok: false, error: `show proc: ${proc.message}` };
  let listed: readonly { pid: number; current: boolean }[];
  try {
    listed = parseShowProc(proc.output).workers;
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  // One call per worker: the master CLI client sends a call's commands one after another.
  const ask = async (pid: number) => ({
    pid,
    result: (await master.execute([onWorker(pid, command)], { timeoutMs }))[0],
  });
  const olds = Promise.all(listed.filter((w) => !w.current).map((w) => ask(w.pid)));
  const pid = await reached;
  const passed = Promise.all(listed.filter((w) => w.current && pid !== null && w.pid !== pid).map((w) => ask(w.pid)));
  const replies = [...(await olds), ...(await passed)];
  const workers: { pid: number; output: string }[] = [];
  for (const { pid, result } of replies) {
    if (result === undefined) return { ok: false, error: `worker ${pid}: no reply` };
    if (result.status === 'ok') workers.push({ pid, output: result.output });
    else if (!GONE.test(result.message)) return { ok: false, error: `worker ${pid}: ${result.message}` };
  }
  return { ok: true, workers };
}
