import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkVerdict } from '../../../../src/fleet/replies/check-verdict.js';
import { RuntimeParseError } from '../../../../src/fleet/replies/runtime-parse-error.js';
import { parseServersState, parseServerStateEntries } from '../../../../src/fleet/replies/show-servers-state.js';

/** Replies captured from HAProxy 2.6.12 on this machine (see test/fixtures/runtime). */
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/runtime/${name}`, import.meta.url), 'utf8');

describe('show servers state', () => {
  const rows = parseServersState(fixture('show-servers-state.txt'));

  it('skips the version line and the header, and types the columns', () => {
    expect(rows).toHaveLength(5);
    expect(rows[0]).toMatchObject({
      be_id: 3,
      be_name: 'be_app',
      srv_id: 1,
      srv_name: 's1',
      srv_addr: '127.0.0.1',
      srv_op_state: 2,
      srv_admin_state: 8,
      srv_uweight: 10,
      srv_iweight: 10,
      srv_port: 19311,
      srv_fqdn: null,
      srv_check_addr: null,
    });
  });

  it('derives the operational and administrative state', () => {
    expect(rows.map((r) => `${r.srv_name}:${r.opState}:${r.admin}`)).toEqual([
      's1:running:drain',
      's2:running:ready',
      's3:stopped:ready',
      's4:stopped:maint',
      'o1:running:ready',
    ]);
  });

  it('treats a `disabled` server put back with `state ready` as ready: only the config flag (4) is left', () => {
    const header = fixture('show-servers-state.txt').split('\n').slice(0, 2).join('\n');
    const text = `${header}\n3 be 2 s2 127.0.0.1 2 4 10 10 0 1 0 0 8 0 0 0 - 19874 - 0 0 - - 0\n`;
    expect(parseServersState(text).map((r) => `${r.opState}:${r.admin}`)).toEqual(['running:ready']);
  });

  it('refuses an unknown format version', () => {
    expect(() => parseServersState('2\n# be_id be_name\n')).toThrow(/format version/);
    expect(() => parseServersState("Can't find backend.")).toThrow(RuntimeParseError);
  });
});

describe('show servers state, read lean for the reconciler', () => {
  const entries = parseServerStateEntries(fixture('show-servers-state.txt'));

  it('gives what planning and health use, with the ids a scoped show stat takes', () => {
    expect(entries[0]).toEqual({
      proxyId: 3,
      serverId: 1,
      backend: 'be_app',
      name: 's1',
      address: '127.0.0.1',
      port: 19311,
      weight: 10,
      opState: 'running',
      admin: 'drain',
      secondsInState: expect.any(Number),
      check: { status: 'L7OK', description: 'Layer7 check passed' },
    });
    expect(entries.map((e) => `${e.name}:${e.opState}:${e.admin}`)).toEqual(
      parseServersState(fixture('show-servers-state.txt')).map((r) => `${r.srv_name}:${r.opState}:${r.admin}`),
    );
  });

  it('reads every server of a large reply as the full row reader does, backend by backend', () => {
    const header = fixture('show-servers-state.txt').split('\n').slice(0, 2).join('\n');
    const lines = Array.from({ length: 600 }, (_, i) => {
      const [be, srv] = [Math.floor(i / 200), i % 200];
      return `${be + 3} be_t${be} ${srv + 1} s${srv} 10.0.${be}.${srv} ${i % 4} ${[0, 4, 8, 1][i % 4]} ${i % 257} 1 ${i * 7} ${i % 21} 3 4 ${[6, 2, 14, 7][i % 4]} 0 0 0 - ${1000 + i} - 0 0 - - 0`;
    });
    const text = `${header}\n${lines.join('\n')}\n`;
    const entries = parseServerStateEntries(text);
    const rows = parseServersState(text);
    expect(entries).toHaveLength(600);
    entries.forEach((e, i) => {
      const r = rows[i]!;
      expect([
        e.proxyId,
        e.serverId,
        e.backend,
        e.name,
        e.address,
        e.port,
        e.weight,
        e.secondsInState,
        e.opState,
        e.admin,
      ]).toEqual([
        r.be_id,
        r.srv_id,
        r.be_name,
        r.srv_name,
        r.srv_addr,
        r.srv_port,
        r.srv_uweight,
        r.srv_time_since_last_change,
        r.opState,
        r.admin,
      ]);
      expect(e.check).toEqual(checkVerdict(r.srv_check_state, r.srv_check_status));
    });
    // A reply cut short mid-line reads its missing cells as absent rather than as another column.
    expect(parseServerStateEntries(`${header}\n3 be_a 1 s1 127.0.0.1 2 0\n`)[0]).toMatchObject({
      backend: 'be_a',
      weight: NaN,
      port: NaN,
    });
  });

  it('leaves parseServersState its raw columns, built when read', () => {
    const row = parseServersState(fixture('show-servers-state.txt'))[0]!;
    expect(row.raw).toMatchObject({ be_name: 'be_app', srv_name: 's1', srv_agent_port: expect.any(String) });
    expect(Object.keys(row)).not.toContain('raw');
  });

  it('refuses what parseServersState refuses, and a reply without a column it needs', () => {
    expect(() => parseServerStateEntries("Can't find backend.")).toThrow(RuntimeParseError);
    expect(() => parseServerStateEntries('1\n# be_id be_name srv_id srv_name\n3 be 1 s1\n')).toThrow(
      /no srv_addr column/,
    );
  });
});
