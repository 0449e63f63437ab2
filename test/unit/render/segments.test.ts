import { describe, expect, it } from 'vitest';
import { joinSegments, type NodeSnapshot } from '../../../src/domain/snapshot.js';
import { renderHaproxy, renderHaproxySegments } from '../../../src/render/haproxy.js';
import { renderNginx, renderNginxSegments } from '../../../src/render/nginx.js';
import { seedSnapshot } from '../../fixtures/seed-snapshot.js';

/**
 * Builds store a node's files piece by piece (one piece per tenant part), so a one-tenant change
 * stores one piece: the pieces must join into exactly the rendered files, and an unchanged
 * tenant's piece must be the very same string from one render to the next (what is hashed once).
 */
const kinds = [
  { kind: 'haproxy', file: 'haproxy.cfg', render: renderHaproxy, segments: renderHaproxySegments },
  { kind: 'nginx', file: 'nginx.conf', render: renderNginx, segments: renderNginxSegments },
] as const;

describe.each(kinds)('$kind files as segments', ({ kind, file, render, segments }) => {
  const snapshot = seedSnapshot(kind, `/etc/sy-${kind}`);

  it('join into exactly the rendered files, with a piece per tenant part', () => {
    const pieces = segments(snapshot);
    expect(joinSegments(pieces)).toEqual(render(snapshot));
    expect(pieces[file]!.length).toBeGreaterThan(snapshot.tenants.length);
  });

  it('keep an unchanged tenant’s piece as the same string when another tenant changes', () => {
    const before = segments(snapshot)[file]!;
    const [first, ...others] = snapshot.tenants;
    const changed = {
      ...first!,
      pools: first!.pools.map((p) => ({
        ...p,
        members: p.members.map((m, i) => (i === 0 ? { ...m, weight: m.weight + 50 } : m)),
      })),
    };
    const next: NodeSnapshot = { ...snapshot, tenants: [changed, ...others] };
    const after = segments(next)[file]!;
    const kept = after.filter((piece) => before.includes(piece));
    const fresh = after.filter((piece) => !before.includes(piece));
    // Only the changed tenant's part (and, for NGINX, nothing else) is new.
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((piece) => piece.includes(first!.id))).toBe(true);
    expect(kept.length).toBe(after.length - fresh.length);
    expect(joinSegments({ [file]: after })[file]).toBe(render(next)[file]);
  });
});
