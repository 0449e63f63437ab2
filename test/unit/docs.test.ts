import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README and docs/ stay navigable and true to the tree: every relative link and anchor
 * resolves, every file path they name exists, and every example shown is the committed file.
 */
const ROOT = resolve(new URL('../../', import.meta.url).pathname);
const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The text outside fenced code blocks. */
const prose = (markdown: string) => markdown.replace(/^```[\s\S]*?^```/gm, '');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(markdown).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Fenced blocks whose first line names a file under examples/: path → what the block shows of it. */
function exampleBlocks(markdown: string): [string, string][] {
  return [...markdown.matchAll(/^```[a-z]*\n# (examples\/\S+)\n([\s\S]*?)^```/gm)].map((m) => [m[1]!, m[2]!]);
}

const glob = (pattern: string) =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);

/** Whether a repository path (possibly with `*` in its last part) names something that exists. */
function pathExists(path: string): boolean {
  if (!path.includes('*')) return existsSync(join(ROOT, path));
  const dir = join(ROOT, dirname(path));
  const last = glob(path.slice(path.lastIndexOf('/') + 1));
  return existsSync(dir) && readdirSync(dir).some((f) => last.test(f));
}

describe('docs', () => {
  it('every relative link points at a file that exists, and every anchor at a heading there', () => {
    const broken: string[] = [];
    for (const doc of DOCS) {
      for (const m of prose(read(doc)).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path === '' ? doc : relative(ROOT, resolve(ROOT, dirname(doc), path));
        if (!existsSync(join(ROOT, file))) broken.push(`${doc}: ${target} (no ${file})`);
        else if (anchor !== undefined && !anchors(read(file)).has(anchor))
          broken.push(`${doc}: ${target} (no heading #${anchor} in ${file})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('every repository path the docs name in backquotes exists', () => {
    const missing: string[] = [];
    for (const doc of DOCS) {
      for (const m of prose(read(doc)).matchAll(
        /`((?:src|test|bench|templates|migrations|examples|scripts|ui|docs)\/[A-Za-z0-9_./*-]*)`/g,
      )) {
        if (!pathExists(m[1]!)) missing.push(`${doc}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every example the docs show is the committed file, byte for byte, and every example file is shown', () => {
    const shown = new Set<string>();
    for (const doc of DOCS) {
      for (const [path, body] of exampleBlocks(read(doc))) {
        shown.add(path);
        expect(body, `${doc} shows ${path}`).toBe(read(path));
      }
    }
    const files = readdirSync(join(ROOT, 'examples'), { recursive: true, encoding: 'utf8' })
      .map((f) => `examples/${f}`)
      .filter((f) => statSync(join(ROOT, f)).isFile() && !f.endsWith('.gitignore') && !/\.(crt|key)$/.test(f));
    expect(files.filter((f) => !shown.has(f))).toEqual([]);
  });
});
