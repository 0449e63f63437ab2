/**
 * Summarises a V8 `.cpuprofile` (node --cpu-prof) as text: where the time went, by function
 * (self and total), optionally only over the last N seconds of the profile, which is how a
 * benchmark's final phase (bench:scale's member changes, after minutes of tenant creation) is
 * read on its own.
 *
 *   node --import tsx scripts/cpuprofile-summary.ts FILE [--last SECONDS] [--top N] [--match TEXT]
 *
 * `--match` also lists, for the functions whose name or file contains TEXT, the first three frames
 * of this code base (src/) under them: which of our calls the time was spent for.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const args = process.argv.slice(2);
const file = args[0];
if (file === undefined || file.startsWith('--')) {
  console.error('usage: cpuprofile-summary.ts FILE [--last SECONDS] [--top N] [--match TEXT]');
  process.exit(2);
}
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const lastS = Number(option('--last') ?? 0);
const top = Number(option('--top') ?? 30);
const match = option('--match');

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Sample times: startTime + running sum of deltas (µs).
const times: number[] = [];
let t = profile.startTime;
for (const d of profile.timeDeltas) times.push((t += d));
const from = lastS > 0 ? profile.endTime - lastS * 1e6 : profile.startTime;

const label = (f: CallFrame) =>
  `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
const self = new Map<string, number>();
const total = new Map<string, number>();
const stacks = new Map<string, number>();
let counted = 0;
let idle = 0;
for (let i = 0; i < profile.samples.length; i++) {
  if (times[i]! < from) continue;
  const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
  const node = byId.get(profile.samples[i]!)!;
  counted += dt;
  const name = node.callFrame.functionName;
  if (name === '(idle)' || name === '(program)') {
    if (name === '(idle)') idle += dt;
    continue;
  }
  const key = label(node.callFrame);
  self.set(key, (self.get(key) ?? 0) + dt);
  const seen = new Set<string>();
  const chain: string[] = [];
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const k = label(byId.get(id)!.callFrame);
    chain.push(k);
    if (seen.has(k)) continue;
    seen.add(k);
    total.set(k, (total.get(k) ?? 0) + dt);
  }
  if (match !== undefined && key.includes(match)) {
    // The frame itself, then the first frames of this code base (src/) that led to it.
    const ours = chain.filter((k) => k.startsWith('src/') || / src\//.test(k)).slice(0, 3);
    const s = [chain[0]!, ...ours].join('  <  ');
    stacks.set(s, (stacks.get(s) ?? 0) + dt);
  }
}

const ms = (v: number) => `${v.toFixed(0).padStart(7)} ms`;
const list = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${ms(v)} ${((100 * v) / Math.max(counted, 1)).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
console.log(`window ${((profile.endTime - from) / 1e6).toFixed(1)} s: ${counted.toFixed(0)} ms sampled, ${idle.toFixed(0)} ms idle`);
console.log(`\n-- self --\n${list(self)}`);
console.log(`\n-- total (inclusive) --\n${list(total)}`);
if (match !== undefined) console.log(`\n-- stacks of *${match}* --\n${list(stacks)}`);
