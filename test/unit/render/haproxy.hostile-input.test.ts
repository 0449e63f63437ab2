import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { NodeSnapshot } from '../../../src/domain/snapshot.js';
import { UnsafeValueError } from '../../../src/render/guard.js';
import { renderHaproxy } from '../../../src/render/haproxy.js';
import { featuresSnapshot } from '../../fixtures/features-snapshot.js';
import { seedSnapshot } from '../../fixtures/seed-snapshot.js';

/** Strings that could end a directive, start another, or pass for something they are not. */
const HOSTILE: Record<string, string> = {
  newline: 'a\nb',
  'carriage return': 'a\rb',
  semicolon: 'a;b',
  'open brace': 'a{b',
  'close brace': 'a}b',
  hash: 'a#b',
  'double quote': 'a"b',
  'single quote': "a'b",
  backslash: 'a\\b',
  dollar: 'a$b',
  space: 'a b',
  tab: 'a\tb',
  NUL: 'a\0b',
  'line separator': 'a\u2028b',
  'zero-width space': 'a\u200bb',
  'fullwidth letters': 'ａｄｍｉｎ',
  'Cyrillic look-alike': 'exаmple',
  'directive after newline': 'x\n    stats socket /tmp/evil level admin',
  '1 MB': 'a'.repeat(1 << 20),
};

type Path = (string | number)[];

/** Every string in the snapshot, with its path: each one is a field a hostile value may occupy. */
function stringPaths(value: unknown, path: Path = []): Path[] {
  if (typeof value === 'string') return [path];
  if (Array.isArray(value)) return value.flatMap((item, i) => stringPaths(item, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => stringPaths(item, [...path, key]));
  }
  return [];
}

function withValue(snapshot: NodeSnapshot, path: Path, value: string): NodeSnapshot {
  const copy = structuredClone(snapshot) as unknown as Record<string | number, unknown>;
  let target = copy;
  for (const key of path.slice(0, -1)) target = target[key] as Record<string | number, unknown>;
  target[path.at(-1)!] = value;
  return copy as unknown as NodeSnapshot;
}

describe.each([
  ['seed', seedSnapshot('haproxy', '/etc/haproxy/switchyard')],
  ['features', featuresSnapshot('haproxy', '/etc/haproxy/switchyard')],
])('a hostile value in any string field of the %s snapshot', (_, snapshot) => {
  const paths = stringPaths(snapshot);

  it('covers every string field, printed or not', () => {
    expect(paths.length).toBeGreaterThan(40);
    expect(() => renderHaproxy(snapshot)).not.toThrow();
  });

  it.each(Object.entries(HOSTILE))('%s: is refused with UnsafeValueError before anything is rendered', (_, hostile) => {
    const escaped: string[] = [];
    for (const path of paths) {
      try {
        renderHaproxy(withValue(snapshot, path, hostile));
        escaped.push(`${path.join('.')}: rendered`);
      } catch (error) {
        if (!(error instanceof UnsafeValueError)) escaped.push(`${path.join('.')}: ${String(error)}`);
      }
    }
    expect(escaped).toEqual([]);
  });
});

describe('the HAProxy renderer', () => {
  it('does no I/O: no module of it imports the file system, processes or sockets', () => {
    const dir = fileURLToPath(new URL('../../../src/render/', import.meta.url));
    const modules = readdirSync(dir).filter((f) => f.startsWith('haproxy') && f.endsWith('.ts'));
    expect(modules).toContain('haproxy-view.ts');
    for (const file of modules) {
      expect(readFileSync(`${dir}${file}`, 'utf8'), file).not.toMatch(
        /from 'node:(fs|child_process|net|http|https|dgram)/,
      );
    }
  });
});
