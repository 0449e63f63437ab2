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
/** The tenant whose part a piece of haproxy.cfg is (it starts with `# tenant <id>`), or null. */
const cfgOwner = (piece: string): string | null => /^# tenant (\S+)\n/.exec(piece)?.[1] ?? null;

/** The tenant whose entries a piece of runtime-state.jsonl holds (every line one of its own), or null. */
function stateOwner(piece: string): string | null {
  const owners = new Set(
    piece
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { caps?: string; value: { tenant?: string } })
      .map((entry) => entry.caps ?? entry.value?.tenant ?? null),
  );
  return owners.size === 1 ? [...owners][0]! : null;
}

const kinds = [
  {
    kind: 'haproxy',
    file: 'haproxy.cfg',
    memberFile: 'haproxy.cfg',
    owner: cfgOwner,
    render: renderHaproxy,
    segments: renderHaproxySegments,
  },
  // NGINX keeps HTTP members in the runtime state the Lua balancer reads, not in nginx.conf.
  {
    kind: 'nginx',
    file: 'nginx.conf',
    memberFile: 'runtime-state.jsonl',
    owner: stateOwner,
    render: renderNginx,
    segments: renderNginxSegments,
  },
] as const;

/** The snapshot with the first member of each of the first tenant's pools given 50 more weight. */
function reweighted(snapshot: NodeSnapshot): NodeSnapshot {
  const [first, ...others] = snapshot.tenants;
  const changed = {
    ...first!,
    pools: first!.pools.map((p) => ({
      ...p,
      members: p.members.map((m, i) => (i === 0 ? { ...m, weight: m.weight + 50 } : m)),
    })),
  };
  return { ...snapshot, tenants: [changed, ...others] };
}

describe.each(kinds)('$kind files as segments', ({ kind, file, memberFile, owner, render, segments }) => {
  const snapshot = seedSnapshot(kind, `/etc/sy-${kind}`);

  it('join into exactly the rendered files, with a piece per tenant part', () => {
    const pieces = segments(snapshot);
    expect(joinSegments(pieces)).toEqual(render(snapshot));
    expect(pieces[file]!.length).toBeGreaterThan(snapshot.tenants.length);
  });

  it('keep an unchanged tenant’s piece as the same string when another tenant changes', () => {
    const before = segments(snapshot);
    const next = reweighted(snapshot);
    const after = segments(next);
    const pieces = after[memberFile]!;
    const kept = pieces.filter((piece) => before[memberFile]!.includes(piece));
    const fresh = pieces.filter((piece) => !before[memberFile]!.includes(piece));
    // Only the changed tenant's part is new.
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.map(owner)).toEqual(fresh.map(() => snapshot.tenants[0]!.id));
    expect(kept.length).toBe(pieces.length - fresh.length);
    expect(joinSegments(after)).toEqual(render(next));
    // Every other file is unchanged, piece for piece: on NGINX that is nginx.conf itself.
    for (const name of Object.keys(after).filter((f) => f !== memberFile))
      expect(after[name], name).toEqual(before[name]);
  });
});

describe('nginx.conf as segments', () => {
  it('when a tenant changes what nginx.conf holds, then only its piece is new', () => {
    const snapshot = seedSnapshot('nginx', '/etc/sy-nginx');
    const [a, ...others] = snapshot.tenants;
    const slower = { ...a!, vips: a!.vips.map((v) => ({ ...v, timeouts: { ...v.timeouts, serverMs: 90_000 } })) };
    const before = renderNginxSegments(snapshot)['nginx.conf']!;
    const after = renderNginxSegments({ ...snapshot, tenants: [slower, ...others] })['nginx.conf']!;
    const fresh = after.filter((piece) => !before.includes(piece));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toContain('# tenant a\n');
    expect(fresh[0]).toContain('proxy_read_timeout 90s;');
  });
});
