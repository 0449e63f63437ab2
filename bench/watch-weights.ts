/**
 * A separate process that watches one HAProxy node until every `be_t1_bulk*` server carries its
 * expected weight, then prints process.hrtime.bigint() (CLOCK_MONOTONIC, shared by every process
 * on the machine). Watching from outside keeps the control plane's own post-push work (config
 * build, health bookkeeping) from delaying the observation. Args: statsPort expectedCount round
 * (member bN expects weight 2 + ((N + round) % 200), as bench/propagation.ts writes it).
 *
 * A full `show servers state` of 10,000 servers costs HAProxy's CLI several milliseconds, on the
 * same thread that applies the commands being measured; polling it would slow down what it times.
 * So the watcher reads the full state once to learn the backends, then polls ten backends not yet
 * seen live at a time (100 servers each; at once after a batch found all live, else every 5 ms),
 * and prints the moment the last one was seen live.
 * Weights only move forward during the push, so every backend seen live earlier is still live
 * then: a final full read confirms it before the time is printed (and polling resumes if not).
 */
import net from 'node:net';

const [port, count, round] = process.argv.slice(2).map(Number) as [number, number, number];
const deadline = Date.now() + 60_000;
const PER_POLL = 10;

function cli(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let out = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(`${command}\n`));
    socket.on('data', (d: string) => (out += d));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(2000, () => socket.destroy(new Error('timeout')));
  });
}

/** Per bulk backend: its server count and whether every one carries its expected weight. */
function backends(text: string): Map<string, { servers: number; live: boolean }> {
  const out = new Map<string, { servers: number; live: boolean }>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[1]?.startsWith('be_t1_bulk') !== true) continue;
    const entry = out.get(f[1]) ?? { servers: 0, live: true };
    entry.servers += 1;
    entry.live &&= Number(f[7]) === 2 + ((Number(f[3]!.slice(1)) + round) % 200);
    out.set(f[1], entry);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const allLive = (state: Map<string, { servers: number; live: boolean }>) =>
  [...state.values()].reduce((n, b) => n + b.servers, 0) === count && [...state.values()].every((b) => b.live);

function fail(why: string): never {
  process.stderr.write(`${why}\n`);
  process.exit(1);
}

let pending: string[] = [];
while (pending.length === 0) {
  const state = backends(await cli('show servers state').catch(() => ''));
  if ([...state.values()].reduce((n, b) => n + b.servers, 0) === count) pending = [...state.keys()].filter((b) => !state.get(b)!.live);
  else if (Date.now() > deadline) fail('timed out waiting for the bulk backends');
  else await sleep(10);
}

for (;;) {
  const batch = pending.slice(0, PER_POLL);
  const replies = await cli(batch.map((b) => `show servers state ${b}`).join(';')).catch(() => '');
  const state = backends(replies);
  const before = pending.length;
  pending = pending.filter((b) => !(batch.includes(b) && state.get(b)?.live === true));
  if (pending.length === 0) {
    const seenAt = process.hrtime.bigint();
    const full = backends(await cli('show servers state'));
    if (allLive(full)) {
      process.stdout.write(`${seenAt}\n`);
      process.exit(0);
    }
    pending = [...full.keys()].filter((b) => !full.get(b)!.live);
  }
  if (Date.now() > deadline) fail('timed out');
  // A batch found all live: the push is past it, read on at once. Otherwise wait 5 ms: the machine
  // has two cores, and a watcher polling flat out would take one from what it is timing.
  if (before - pending.length < batch.length) await sleep(5);
}
