import type { CommandKind, RuntimeCommand } from './commands/runtime-command.js';
import type { CommandResult, ExecuteOptions, RuntimeExecutor } from './runtime-executor.js';

/** Batches smaller than this go down one connection: splitting them saves nothing worth the reorder. */
export const MIN_LANED_BATCH = 512;

/** Commands that name one server as `backend/server`: their order only matters within the backend. */
const SERVER_KINDS: ReadonlySet<CommandKind> = new Set<CommandKind>([
  'set-server-weight',
  'set-server-addr',
  'set-server-state',
  'set-server-maxconn',
  'add-server',
  'del-server',
  'enable-server',
  'disable-server',
  'enable-health',
  'disable-health',
  'get-weight',
]);

/** The backend a command acts on, or undefined for commands that act on none (maps, frontends, certificates). */
function backendOf(c: RuntimeCommand): string | undefined {
  if (c.target !== 'worker') return undefined;
  if (c.kind === 'show-servers-state') {
    const space = c.line.lastIndexOf(' ');
    const last = c.line.slice(space + 1);
    return last === 'state' ? undefined : last;
  }
  if (!SERVER_KINDS.has(c.kind)) return undefined;
  // `… backend/server …`: the token holding the first slash (names never contain one).
  const slash = c.line.indexOf('/');
  return slash < 0 ? undefined : c.line.slice(c.line.lastIndexOf(' ', slash) + 1, slash);
}

/**
 * Spreads a large batch over several connections to the same Runtime API. HAProxy serves each CLI
 * connection on one of its threads, so one connection uses one core of the proxy; two connections
 * apply 10,000 weight changes to a two-thread HAProxy in about two thirds of the time (measured
 * here: 45–60 ms against 60–100 ms).
 *
 * Order is kept where it matters: every server command of a backend goes down the same lane in
 * the order given (`add server` before `enable server`, drain before `del server`), and every other
 * command (maps, frontends, certificates) goes down the first lane in its order. Lanes are filled
 * backend by backend, balancing their command counts. Results come back in the order given.
 */
export class LanedExecutor implements RuntimeExecutor {
  constructor(
    private readonly lanes: readonly RuntimeExecutor[],
    private readonly minBatch = MIN_LANED_BATCH,
  ) {
    if (lanes.length === 0) throw new Error('a laned executor needs at least one lane');
  }

  /** Opens the lanes a large batch adds to the first (which every batch uses, so stays open). */
  warm(): void {
    for (const lane of this.lanes.slice(1)) lane.warm?.();
  }

  async execute(commands: readonly RuntimeCommand[], options?: ExecuteOptions): Promise<CommandResult[]> {
    if (this.lanes.length === 1 || commands.length < this.minBatch) return this.lanes[0]!.execute(commands, options);
    const assignment = assignLanes(commands, this.lanes.length);
    const perLane = this.lanes.map(() => [] as number[]);
    assignment.forEach((lane, i) => {
      perLane[lane]!.push(i);
    });
    const replies = await Promise.all(
      perLane.map((indexes, lane) =>
        indexes.length === 0
          ? Promise.resolve([])
          : this.lanes[lane]!.execute(
              indexes.map((i) => commands[i]!),
              options,
            ),
      ),
    );
    const results = new Array<CommandResult>(commands.length);
    perLane.forEach((indexes, lane) => {
      indexes.forEach((i, k) => {
        results[i] = replies[lane]![k]!;
      });
    });
    return results;
  }
}

/** The lane of each command: see LanedExecutor. Pure. */
export function assignLanes(commands: readonly RuntimeCommand[], lanes: number): number[] {
  const byBackend = new Map<string, number[]>();
  const out = new Array<number>(commands.length).fill(0);
  const load = new Array<number>(lanes).fill(0);
  commands.forEach((c, i) => {
    const backend = backendOf(c);
    if (backend === undefined) {
      load[0]! += 1;
      return;
    }
    const list = byBackend.get(backend);
    if (list) list.push(i);
    else byBackend.set(backend, [i]);
  });
  // Largest backends first onto the least-loaded lane: a greedy balance, deterministic.
  const backends = [...byBackend].sort(([a, x], [b, y]) => y.length - x.length || (a < b ? -1 : a > b ? 1 : 0));
  for (const [, indexes] of backends) {
    let lane = 0;
    for (let l = 1; l < lanes; l++) if (load[l]! < load[lane]!) lane = l;
    load[lane]! += indexes.length;
    for (const i of indexes) out[i] = lane;
  }
  return out;
}
