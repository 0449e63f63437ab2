import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DesiredRuntime } from '../../../src/domain/runtime-state.js';
import {
  certificateReads,
  observationTarget,
  observeCommands,
  readObservation,
  readScopedObservation,
  scopedObserveCommands,
  sessionReads,
  withCertificates,
  withSessions,
} from '../../../src/fleet/observe-runtime.js';
import { parseServerStateEntries } from '../../../src/fleet/replies/show-servers-state.js';
import { parseShowStat } from '../../../src/fleet/replies/show-stat.js';
import type { RuntimeCommand } from '../../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult } from '../../../src/fleet/runtime-api/runtime-executor.js';
import { tenantRuntimeNames, toHaproxyRuntime } from '../../../src/render/haproxy-runtime-view.js';
import { CERT_FILE, capture, MAP_FILE, seed } from '../domain/runtime-fixtures.js';

/** Replies captured from HAProxy 2.6.12 (test/fixtures/runtime). */
const fixture = (name: string): string =>
  readFileSync(new URL(`../../fixtures/runtime/${name}`, import.meta.url), 'utf8').replace(/\n+$/, '');
const answered = (commands: readonly RuntimeCommand[], replies: readonly string[]): CommandResult[] =>
  commands.map((command, i) => ({ status: 'ok', command, output: replies[i] ?? '' }));
/** The frontend and backend rows of a full `show stat` capture: what `show stat -1 3 -1` answers. */
const withoutServers = (csv: string): string =>
  csv
    .split('\n')
    .filter((line, i) => i === 0 || !/^[^,]*,[^,]*,/.test(line) || /,(FRONTEND|BACKEND),/.test(line))
    .join('\n');

const desired: DesiredRuntime = toHaproxyRuntime(seed());
/** The desired runtime with some servers of one backend removed. */
const without = (d: DesiredRuntime, backend: string, servers: readonly string[]): DesiredRuntime => ({
  ...d,
  backends: d.backends.map((b) =>
    b.name === backend ? { ...b, servers: b.servers.filter((s) => !servers.includes(s.name)) } : b,
  ),
});
const lean = (): ReturnType<typeof readObservation> => {
  const commands = observeCommands(desired);
  return readObservation(
    desired,
    answered(commands, [
      capture('show-servers-state.txt'),
      withoutServers(capture('show-stat.csv')),
      capture('show-map.txt'),
      capture('show-ssl-cert.txt'),
    ]),
  );
};

describe('observing a node for a reconcile pass', () => {
  it('reads frontends and backends only from show stat, never every server row', () => {
    expect(
      observeCommands(desired)
        .map((c) => c.line)
        .slice(0, 3),
    ).toEqual(['show servers state', 'show stat -1 3 -1', `show map ${desired.capsMap.file}`]);
    expect(observeCommands(desired, { serverStats: true })[1]!.line).toBe('show stat -1 7 -1');
  });

  it('without server rows, leaves backup flags and sessions unknown and takes everything else from show servers state', () => {
    const observation = lean();
    if (!observation.ok) throw new Error(observation.error);
    const full = readObservation(
      desired,
      answered(observeCommands(desired), [
        capture('show-servers-state.txt'),
        capture('show-stat.csv'),
        capture('show-map.txt'),
        capture('show-ssl-cert.txt'),
      ]),
    );
    if (!full.ok) throw new Error(full.error);
    expect(observation.observed.servers.every((s) => s.backup === null && s.sessions === null)).toBe(true);
    expect(full.observed.servers.every((s) => s.backup !== null && s.sessions !== null)).toBe(true);
    const strip = (s: (typeof full.observed.servers)[number]) => ({ ...s, backup: null, sessions: null });
    expect(observation.observed.servers).toEqual(full.observed.servers.map(strip));
    expect(observation.observed.frontends).toEqual(full.observed.frontends);
    expect(observation.observed.backends).toEqual(full.observed.backends);
  });

  it('reports the check verdict show stat prints, decoded from show servers state (both captures)', () => {
    for (const dir of ['', 'seed/']) {
      const stat = parseShowStat(fixture(`${dir}show-stat.csv`));
      for (const entry of parseServerStateEntries(fixture(`${dir}show-servers-state.txt`))) {
        const row = stat.find((r) => r.pxname === entry.backend && r.svname === entry.name)!;
        expect(
          { status: entry.check?.status ?? null, description: entry.check?.description ?? null },
          `${dir}${entry.backend}/${entry.name}`,
        ).toEqual({
          status: row.check_status?.replace(/^\* /, '') ?? null,
          description: row.check_desc,
        });
      }
    }
  });

  it('asks for the sessions of the servers being taken out, one scoped show stat each, and nothing else', () => {
    const observation = lean();
    if (!observation.ok) throw new Error(observation.error);
    expect(sessionReads(desired, observation)).toEqual([]);
    const fewer = without(desired, 'be_b_api', ['api-2']);
    const reads = sessionReads(fewer, observation);
    expect(reads.map((r) => [r.backend, r.server, r.command.line])).toEqual([['be_b_api', 'api-2', 'show stat 9 4 2']]);
    // Behind cookie persistence (be_a_web in the seed) a removal only drains: its sessions decide nothing.
    expect(sessionReads(without(desired, 'be_a_web', ['web-2']), observation)).toEqual([]);
  });

  it('fills sessions from the scoped replies, and leaves them unknown when a reply names another server or failed', () => {
    const observation = lean();
    if (!observation.ok) throw new Error(observation.error);
    const reads = sessionReads(
      without(without(desired, 'be_c_ssh', ['ssh-1', 'ssh-2']), 'be_b_api', ['api-1']),
      observation,
    );
    expect(reads.map((r) => `${r.backend}/${r.server}`)).toEqual([
      'be_b_api/api-1',
      'be_c_ssh/ssh-1',
      'be_c_ssh/ssh-2',
    ]);
    const header = '# pxname,svname,qcur,qmax,scur,smax,slim,type';
    const results: CommandResult[] = [
      { status: 'ok', command: reads[0]!.command, output: `${header}\nbe_b_api,api-1,0,0,4,4,,2` },
      { status: 'ok', command: reads[1]!.command, output: `${header}\nbe_c_ssh,reused-id,0,0,9,9,,2` },
      { status: 'error', command: reads[2]!.command, message: 'No such server.' },
    ];
    const filled = withSessions(observation, reads, results);
    if (!filled.ok) throw new Error(filled.error);
    const sessions = Object.fromEntries(filled.observed.servers.map((s) => [`${s.backend}/${s.name}`, s.sessions]));
    expect(sessions).toMatchObject({
      'be_b_api/api-1': 4,
      'be_b_api/api-2': null,
      'be_c_ssh/ssh-1': null,
      'be_c_ssh/ssh-2': null,
    });
  });

  it('reads, in a second batch, the certificates an early read did not know about', () => {
    const guess = { ...observationTarget(desired), certificateFiles: [] };
    const commands = observeCommands(guess);
    expect(commands.some((c) => c.kind === 'show-ssl-cert')).toBe(false);
    const early = readObservation(
      guess,
      answered(commands, [
        capture('show-servers-state.txt'),
        withoutServers(capture('show-stat.csv')),
        capture('show-map.txt'),
      ]),
    );
    if (!early.ok) throw new Error(early.error);
    expect(certificateReads(desired, early)).toEqual([CERT_FILE]);
    const done = withCertificates(
      early,
      [CERT_FILE],
      [{ status: 'ok', command: observeCommands(desired).at(-1)!, output: capture('show-ssl-cert.txt') }],
    );
    if (!done.ok) throw new Error(done.error);
    const complete = lean();
    if (!complete.ok) throw new Error(complete.error);
    expect(done.observed.certificates).toEqual(complete.observed.certificates);
    expect(certificateReads(desired, done)).toEqual([]);
  });

  it('makes an observation unusable when a reply never came', () => {
    const commands = observeCommands(desired);
    const results: CommandResult[] = commands.map((command) => ({
      status: 'not-executed',
      command,
      message: 'connection closed',
    }));
    expect(readObservation(desired, results)).toEqual({ ok: false, error: 'connection closed' });
  });
});

describe('observing only a few tenants (a scoped pass)', () => {
  const snapshot = seed();
  const whole = readObservation(
    desired,
    answered(observeCommands(desired), [
      capture('show-servers-state.txt'),
      withoutServers(capture('show-stat.csv')),
      capture('show-map.txt'),
      capture('show-ssl-cert.txt'),
    ]),
  );
  if (!whole.ok) throw new Error(whole.error);
  const [servers, stat, map] = [
    capture('show-servers-state.txt'),
    capture('show-stat.csv'),
    parseShowMapLines(capture('show-map.txt')),
  ];
  /** What HAProxy answers to each scoped command, cut from the whole captures. */
  const reply = (c: RuntimeCommand): CommandResult => {
    const words = c.line.split(' ');
    if (c.kind === 'show-servers-state') {
      const target = words[3];
      const lines = servers.split('\n');
      const rows = lines.slice(2).filter((l) => l.split(' ')[1] === target);
      return rows.length === 0
        ? { status: 'error', command: c, message: "Can't find backend." }
        : { status: 'ok', command: c, output: [...lines.slice(0, 2), ...rows].join('\n') };
    }
    if (c.kind === 'show-stat') {
      const target = words[2];
      const lines = stat.split('\n');
      return {
        status: 'ok',
        command: c,
        output: [lines[0], ...lines.filter((l) => l.startsWith(`${target},FRONTEND,`))].join('\n'),
      };
    }
    if (c.kind === 'get-map') {
      const key = c.line.split(' ')[3]!;
      const value = map.get(key);
      return {
        status: 'ok',
        command: c,
        output:
          value === undefined
            ? 'type=str, case=sensitive, found=no'
            : `type=str, case=sensitive, found=yes, idx=tree, key="${key}", value="${value}", type="str"`,
      };
    }
    return { status: 'ok', command: c, output: capture('show-ssl-cert.txt') };
  };

  for (const t of snapshot.tenants) {
    it(`reads tenant ${t.id}'s objects as a whole read sees them, and nothing of the others`, () => {
      const names = tenantRuntimeNames(t, snapshot.node.configDir);
      const scoped = readScopedObservation(names, scopedObserveCommands(desired.capsMap.file, names).map(reply));
      if (!scoped.ok) throw new Error(scoped.error);
      const mine = new Set(names.backends);
      const strip = (s: { backup: boolean | null; sessions: number | null }) => ({
        ...s,
        backup: null,
        sessions: null,
      });
      expect(scoped.observed.servers).toEqual(whole.observed.servers.filter((s) => mine.has(s.backend)).map(strip));
      expect(scoped.observed.frontends.map((f) => f.name)).toEqual(
        names.frontends.filter((f) => whole.observed.frontends.some((w) => w.name === f)),
      );
      expect(scoped.observed.capsMap).toEqual(whole.observed.capsMap!.filter((e) => names.mapKeys.includes(e.key)));
    });
  }

  it('leaves out a backend the process does not run, and knows no map when the process has none loaded', () => {
    const names = { frontends: [], backends: ['be_gone'], mapKeys: ['t1'], certificateFiles: [] };
    const commands = scopedObserveCommands(MAP_FILE, names);
    expect(commands.map((c) => c.line)).toEqual(['show servers state be_gone', `get map ${MAP_FILE} t1`]);
    const scoped = readScopedObservation(names, [
      { status: 'error', command: commands[0]!, message: "Can't find backend." },
      { status: 'error', command: commands[1]!, message: 'Unknown map identifier. Please use #<id> or <file>.' },
    ]);
    expect(scoped).toMatchObject({ ok: true, observed: { backends: [], servers: [], capsMap: null } });
  });

  it('is unusable when a reply never came', () => {
    const names = { frontends: [], backends: ['be_app'], mapKeys: [], certificateFiles: [] };
    const [command] = scopedObserveCommands(MAP_FILE, names);
    expect(
      readScopedObservation(names, [{ status: 'not-executed', command: command!, message: 'connection lost' }]),
    ).toEqual({
      ok: false,
      error: 'connection lost',
    });
  });
});

function parseShowMapLines(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [, key, value] = l.split(' ');
        return [key!, value ?? ''] as const;
      }),
  );
}
