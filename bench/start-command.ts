import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './support.js';

/**
 * `npm start`'s command line, as package.json has it, split the way the shell runs it: the
 * environment it sets (the allocator's settings), node's flags (the heap's), then the script and
 * its arguments. Benchmarks that start the control plane as a process start it with this, so what
 * they measure (RSS above all) is what users run, and a change to `npm start` reaches them too.
 */
export interface StartCommand {
  readonly env: Readonly<Record<string, string>>;
  readonly nodeArgs: readonly string[];
  /** The script, as an absolute path, and its arguments. */
  readonly args: readonly string[];
}

export function npmStartCommand(): StartCommand {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.trim().split(/\s+/);
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[i]!); i++) {
    const [name, ...value] = words[i]!.split('=');
    env[name!] = value.join('=');
  }
  if (words[i] !== 'node') throw new Error(`npm start does not run node: ${pkg.scripts.start}`);
  const nodeArgs: string[] = [];
  for (i++; i < words.length && words[i]!.startsWith('-'); i++) nodeArgs.push(words[i]!);
  const [script, ...rest] = words.slice(i);
  if (script === undefined) throw new Error(`npm start names no script: ${pkg.scripts.start}`);
  return { env, nodeArgs, args: [join(REPO, script), ...rest] };
}
