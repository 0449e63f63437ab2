import { describe, expect, it } from 'vitest';
import type { NodeSnapshot } from '../../../src/domain/snapshot.js';
import { UnsafeValueError } from '../../../src/render/guard.js';
import { renderNginx } from '../../../src/render/nginx.js';
import { toNginxView } from '../../../src/render/nginx-view.js';
import { featuresSnapshot } from '../../fixtures/features-snapshot.js';
import { seedSnapshot } from '../../fixtures/seed-snapshot.js';

/** Strings that could end a directive, start another, or hide as something else. */
const HOSTILE: Record<string, string> = {
  newline: '\n',
  'carriage return': '\r',
  semicolon: ';',
  'open brace': '{',
  'close brace': '}',
  hash: '#',
  'double quote': '"',
  'single quote': "'",
  backquote: '`',
  backslash: '\\',
  dollar: '$',
  space: ' ',
  tab: '\t',
  NUL: '\0',
  'directive injection': ';\n    return 200 "owned";\n#',
  'fullwidth semicolon': '\uff1b',
  'cyrillic a': '\u0430',
  'zero-width space': '\u200b',
  'right-to-left override': '\u202e',
  '1 MB': 'a'.repeat(1 << 20),
};

type Path = readonly (string | number)[];

/** Every string leaf of a value, by path. */
function stringPaths(value: unknown, path: Path = []): Path[] {
  if (typeof value === 'string') return [path];
  if (Array.isArray(value)) return value.flatMap((item, i) => stringPaths(item, [...path, i]));
  if (value !== null && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => stringPaths(v, [...path, k]));
  return [];
}

/** Fields that hold null in these snapshots but a string elsewhere: they are string fields too. */
function nullableStringPaths(snapshot: NodeSnapshot): Path[] {
  const out: Path[] = [];
  snapshot.tenants.forEach((t, ti) => {
    t.vips.forEach((v, vi) => {
      for (const key of ['certificate', 'defaultPool', 'addressPool'] as const)
        if (v[key] === null) out.push(['tenants', ti, 'vips', vi, key]);
    });
    t.pools.forEach((p, pi) => {
      if (p.healthCheck !== null && p.healthCheck.host === null)
        out.push(['tenants', ti, 'pools', pi, 'healthCheck', 'host']);
    });
  });
  return out;
}

function withValue(snapshot: NodeSnapshot, path: Path, value: string): NodeSnapshot {
  const copy = structuredClone(snapshot) as unknown as Record<string | number, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  at[path.at(-1)!] = value;
  return copy as unknown as NodeSnapshot;
}

function original(snapshot: NodeSnapshot, path: Path): string | null {
  let at: unknown = snapshot;
  for (const key of path) at = (at as Record<string | number, unknown>)[key];
  return typeof at === 'string' ? at : null;
}

const SNAPSHOTS: Record<string, NodeSnapshot> = {
  seed: seedSnapshot('nginx', '/etc/nginx/switchyard'),
  features: featuresSnapshot('nginx', '/etc/nginx/switchyard'),
};

describe.each(Object.keys(SNAPSHOTS))('a hostile string in any field of the %s snapshot', (name) => {
  const snapshot = SNAPSHOTS[name]!;
  const paths = [...stringPaths(snapshot), ...nullableStringPaths(snapshot)];

  it('is refused with UnsafeValueError while the view is built, before any file exists', () => {
    expect(paths.length).toBeGreaterThan(40);
    const missed: string[] = [];
    for (const path of paths) {
      const base = original(snapshot, path);
      for (const [label, hostile] of Object.entries(HOSTILE)) {
        // Alone, and after the valid value (what an attacker would try): each must be refused.
        for (const value of base === null ? [hostile] : [hostile, `${base}${hostile}`]) {
          const poisoned = withValue(snapshot, path, value);
          const refused = (render: () => unknown): boolean => {
            try {
              render();
              return false;
            } catch (err) {
              return err instanceof UnsafeValueError;
            }
          };
          if (!refused(() => toNginxView(poisoned)) || !refused(() => renderNginx(poisoned))) {
            missed.push(`${path.join('.')} = ${value === hostile ? '' : 'valid + '}${label}`);
          }
        }
      }
    }
    expect(missed).toEqual([]);
  });
});

describe('the hostile corpus', () => {
  it('leaves the unpoisoned snapshots renderable, so every refusal above is the poison alone', () => {
    for (const snapshot of Object.values(SNAPSHOTS)) expect(() => renderNginx(snapshot)).not.toThrow();
  });
});
