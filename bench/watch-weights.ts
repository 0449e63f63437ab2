/**
 * A separate process that watches one HAProxy node until every `be_t1_bulk*` server carries its
 * expected weight, then prints process.hrtime.bigint() (CLOCK_MONOTONIC, shared by every process
 * on the machine). Watching from outside keeps the control plane's own post-push work (config
 * build, health bookkeeping) from delaying the observation; it reads the node's local admin socket,
 * as an operator on the node would. Args: adminSocketPath expectedCount round
 * (member bN expects weight 2 + ((N + round) % 200), as bench/propagation.ts writes it).
 *
 * The watcher must not slow down what it times: HAProxy answers it on the same threads that apply
 * the pushed commands, and this machine has two cores. Reading ten backends' `show servers state`
 * every 5 ms (the previous watcher) read three times the node's whole state during one push and
 * made HAProxy apply it 20-40% slower. So it polls one `get weight` per backend not yet seen live:
 * the backend's last server in name order. The push sends a backend's commands in that order down
 * one connection (the plan orders servers by name; LanedExecutor keeps a backend on one lane, in
 * order) and HAProxy applies a connection's commands in order, so that server live means its whole
 * backend is. A full `show servers state` then checks every one of the 10,000 weights before the
 * time is printed (and polling resumes if any is not live).
 */
import net from 'node:net';

const [path, countArg, roundArg] = process.argv.slice(2) as [string, string, string];
const count = Number(countArg);
const round = Number(roundArg);
const deadline = Date.now() + 60_000;
const expected = (server: string) => 2 + ((Number(server.slice(1)) + round) % 200);

/** One non-interactive CLI session: `;`-separated commands, the whole output. */
function cli(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    let out = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(`${command}\n`));
    socket.on('data', (d: string) => (out += d));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(2000, () => socket.destroy(new Error('timeout')));
  });
}

interface Backend {
  servers: number;
  live: boolean;
  /** The server whose change the push sends last in this backend (see above). */
  last: string;
}

/** Per bulk backend: its server count, whether every one carries its expected weight, its last server by name. */
function backends(text: string): Map<string, Backend> {
  const out = new Map<string, Backend>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[1]?.startsWith('be_t1_bulk') !== true) continue;
    const entry = out.get(f[1]) ?? { servers: 0, live: true, last: f[3]! };
    entry.servers += 1;
    entry.live &&= Number(f[7]) === expected(f[3]!);
    if (f[3]! > entry.last) entry.last = f[3]!;
    out.set(f[1], entry);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const total = (state: Map<string, Backend>) => [...state.values()].reduce((n, b) => n + b.servers, 0);

function fail(why: string): never {
  process.stderr.write(`${why}\n`);
  process.exit(1);
}

let state = new Map<string, Backend>();
let pending: string[] = [];
while (pending.length === 0) {
  state = backends(await cli('show servers state').catch(() => ''));
  if (total(state) === count) pending = [...state.keys()].filter((b) => !state.get(b)!.live);
  else if (Date.now() > deadline) fail('timed out waiting for the bulk backends');
  else await sleep(10);
}

for (;;) {
  const reply = await cli(pending.map((b) => `get weight ${b}/${state.get(b)!.last}`).join(';')).catch(() => '');
  const weights = [...reply.matchAll(/^(\d+) \(initial \d+\)$/gm)].map((m) => Number(m[1]));
  const before = pending.length;
  if (weights.length === pending.length)
    pending = pending.filter((b, i) => weights[i] !== expected(state.get(b)!.last));
  if (pending.length === 0) {
    const seenAt = process.hrtime.bigint();
    const full = backends(await cli('show servers state'));
    if (total(full) === count && [...full.values()].every((b) => b.live)) {
      process.stdout.write(`${seenAt}\n`);
      process.exit(0);
    }
    pending = [...full.keys()].filter((b) => !full.get(b)!.live);
  }
  if (Date.now() > deadline) fail('timed out');
  // Some backend went live: the push is moving, read on at once. Otherwise wait 2 ms.
  if (pending.length === before) await sleep(2);
}
