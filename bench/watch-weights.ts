/**
 * A separate process that watches one HAProxy node until every `be_t1_bulk*` server carries its
 * expected weight, then prints process.hrtime.bigint() (CLOCK_MONOTONIC, shared by every process
 * on the machine). Watching from outside keeps the control plane's own post-push work (config
 * build, health bookkeeping) from delaying the observation. Args: statsPort expectedCount.
 */
import net from 'node:net';

const [port, count] = process.argv.slice(2).map(Number) as [number, number];
const deadline = Date.now() + 60_000;

function readState(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let out = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end('show servers state\n'));
    socket.on('data', (d: string) => (out += d));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(2000, () => socket.destroy(new Error('timeout')));
  });
}

function allLive(text: string): boolean {
  let matching = 0;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[1]?.startsWith('be_t1_bulk') !== true) continue;
    if (Number(f[7]) !== 2 + (Number(f[3]!.slice(1)) % 200)) return false;
    matching++;
  }
  return matching === count;
}

for (;;) {
  if (allLive(await readState().catch(() => ''))) {
    process.stdout.write(`${process.hrtime.bigint()}\n`);
    process.exit(0);
  }
  if (Date.now() > deadline) {
    process.stderr.write('timed out\n');
    process.exit(1);
  }
  // Every 10 ms: a full `show servers state` of 10,000 servers costs HAProxy itself a few ms, and
  // polling harder would slow down the very commands being measured.
  await new Promise((r) => setTimeout(r, 10));
}
