/**
 * `npm run bench:first-start`: the quick start as a newcomer runs it. Starts `switchyard serve`
 * (npm start's command line) with no DATABASE_URL on an empty data directory, times it until
 * `/readyz` answers 200, then restarts it on the same directory; BENCH_ROUNDS times. Each phase is
 * read from the control plane's own log lines: loading the code, creating the embedded database
 * (PGlite's initdb), applying the migrations, and the rest (Runtime API CA, admin token, listening).
 * CPU is the process's user + system time when it is ready: on an idle machine the wall time
 * approaches it, on a shared one the gap is the wait for a core. Prints one JSON line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { npmStartCommand } from './start-command.js';
import { round } from './support.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** How `npm start` runs the control plane. */
const START = npmStartCommand();
const CLOCK_TICKS_PER_S = 100;

interface Start {
  readonly readyMs: number;
  readonly cpuMs: number;
  /** Milliseconds from spawn to each log line that closes a phase. */
  readonly marks: Readonly<Record<string, number>>;
}

/** user + system time of a process and its waited-for children, from /proc (Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return (ticks * 1000) / CLOCK_TICKS_PER_S;
}

async function start(dataDir: string): Promise<Start> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...START.env,
    SWITCHYARD_DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'info',
  };
  delete env.DATABASE_URL;
  delete env.SWITCHYARD_ADMIN_TOKEN;
  delete env.SWITCHYARD_SECRET_KEY;
  const began = Date.now();
  const child = spawn(process.execPath, [...START.nodeArgs, ...START.args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const marks: Record<string, number> = {};
  let url: string | undefined;
  let buffered = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const entry = JSON.parse(line) as { msg: string; time: string; url?: string };
      marks[entry.msg.replace(/ \d+\/\d+$/, '')] = Date.parse(entry.time) - began;
      if (entry.url) url = entry.url;
    }
  });
  const exited = new Promise<number | null>((ok) => child.once('exit', ok));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}`);
      if (
        url &&
        (await fetch(`${url}/readyz`).then(
          (r) => r.status,
          () => 0,
        )) === 200
      )
        break;
      await new Promise((ok) => setTimeout(ok, 20));
    }
    return { readyMs: Date.now() - began, cpuMs: cpuMs(child.pid!), marks };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** The phases of one start, in ms, from its log lines. */
function phases(s: Start): Record<string, number> {
  const m = s.marks;
  const loaded = m['DATABASE_URL is not set: using the embedded PGlite database']!;
  const dbReady = m['database ready']!;
  const created = m['embedded database created'];
  return {
    code: loaded,
    ...(created === undefined
      ? { openDatabase: dbReady - loaded }
      : { createDatabase: created - loaded, migrations: dbReady - created }),
    rest: s.readyMs - dbReady,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const firsts: Start[] = [];
const restarts: Start[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const dir = mkdtempSync(join(tmpdir(), 'sy-first-start-'));
  try {
    firsts.push(await start(dir));
    restarts.push(await start(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The median start by time to ready, with its phases (so they add up), and the range over all rounds. */
function summary(starts: Start[]) {
  const typical = [...starts].sort((a, b) => a.readyMs - b.readyMs)[Math.floor(starts.length / 2)]!;
  return {
    readyMs: typical.readyMs,
    readyMsRange: [Math.min(...starts.map((s) => s.readyMs)), Math.max(...starts.map((s) => s.readyMs))],
    cpuMs: median(starts.map((s) => s.cpuMs)),
    phasesMs: phases(typical),
  };
}
process.stdout.write(
  `${JSON.stringify({
    bench: 'first-start',
    rounds: ROUNDS,
    loadAverage: round(loadavg()[0]!, 1),
    firstStart: summary(firsts),
    restart: summary(restarts),
  })}\n`,
);
