import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertNode, type NodeSpec } from '../../src/db/node-repository.js';
import type { RuntimeCommand } from '../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult } from '../../src/fleet/runtime-api/runtime-executor.js';
import { StatsPoller } from '../../src/jobs/stats-poller.js';
import type { Logger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * The poller on nodes with a master CLI, over a real database with fake CLIs: the old workers a
 * reload left serving are read through the master and summed in; a master that does not answer
 * leaves the current worker's samples, logged once.
 */

const COLUMNS = [
  'pxname',
  'svname',
  'scur',
  'slim',
  'stot',
  'dreq',
  'status',
  'type',
  'rate',
  'check_status',
  'hrsp_2xx',
  'hrsp_4xx',
  'hrsp_5xx',
  'req_tot',
];

function showStat(requests: number, sessions: number, slim: number): string {
  const rows = [
    ['fe_t1_web', 'FRONTEND', sessions, slim, requests, 0, 'OPEN', 0, 0, '', requests, 0, 0, requests],
    ['be_t1_web', 'm1', sessions, '', requests, '', 'UP', 2, 0, 'L7OK', requests, 0, 0, ''],
  ];
  return `${[`# ${COLUMNS.join(',')}`, ...rows.map((r) => r.join(','))].join('\n')}\n`;
}

const showInfo = (pid: number) => `Name: HAProxy\nVersion: 2.6.12\nPid: ${pid}\n`;
const showProc = (current: number, old: readonly number[]) =>
  [
    '#<PID>          <type>          <reloads>       <uptime>        <version>',
    '1               master          1 [failed: 0]   0d00h01m00s     2.6.12',
    '# workers',
    `${current}      worker          0               0d00h00m10s     2.6.12`,
    '# old workers',
    ...old.map((pid) => `${pid}      worker          1               0d00h00m50s     2.6.12`),
    '# programs',
  ].join('\n');

/** What each fake CLI answers: the current worker's pid and stats, and the master's view. */
const state = {
  current: { pid: 20, requests: 0, sessions: 0 },
  old: [] as { pid: number; requests: number; sessions: number }[],
  masterUp: true,
  /** The old workers `show proc` lists, when not those of `old` (one that exits right after). */
  listed: null as number[] | null,
};
const masterLines: string[] = [];
const logs: { level: string; msg: string; node?: string; error?: string }[] = [];
let clock = new Date('2026-03-01T12:00:05Z');
let database: TestDatabase;
let poller: StatsPoller;

const ok = (command: RuntimeCommand, output: string): CommandResult => ({ status: 'ok', command, output });

const clients = {
  client: () => ({
    execute: async (commands: readonly RuntimeCommand[]): Promise<CommandResult[]> =>
      commands.map((c) =>
        c.line === 'show info'
          ? ok(c, showInfo(state.current.pid))
          : ok(c, showStat(state.current.requests, state.current.sessions, 500)),
      ),
  }),
};

const masterCli = () => ({
  execute: async (commands: readonly RuntimeCommand[]): Promise<CommandResult[]> =>
    commands.map((c): CommandResult => {
      masterLines.push(c.line);
      if (!state.masterUp) return { status: 'not-executed', command: c, message: 'connect ECONNREFUSED' };
      if (c.line === 'show proc')
        return ok(c, showProc(state.current.pid, state.listed ?? state.old.map((w) => w.pid)));
      const pid = Number(/^@!(\d+) /.exec(c.line)?.[1]);
      const worker = state.old.find((w) => w.pid === pid);
      if (worker === undefined)
        return { status: 'error', command: c, message: `Can't find the target PID matching the prefix '@!${pid}'` };
      return ok(c, showStat(worker.requests, worker.sessions, 400));
    }),
});

const logger = {
  warn: (o: { node?: string; error?: string }, msg: string) =>
    logs.push({ level: 'warn', msg, node: o.node, error: o.error }),
  info: (o: { node?: string }, msg: string) => logs.push({ level: 'info', msg, node: o.node }),
} as unknown as Logger;

const spec: NodeSpec = {
  name: 'w1',
  kind: 'haproxy',
  group: 'default',
  zone: 'z1',
  runtimeAddress: { host: '127.0.0.1', port: 1 },
  masterAddress: { host: '127.0.0.1', port: 2 },
  capacity: { vcpu: 1, memoryMb: 512 },
  configDir: '/etc/x',
};

const frontend = async () =>
  database.handle.db
    .selectFrom('stat_samples')
    .selectAll()
    .where('node_name', '=', 'w1')
    .where('kind', '=', 'frontend')
    .orderBy('at', 'desc')
    .executeTakeFirstOrThrow();

async function pollAfter(seconds: number) {
  clock = new Date(clock.getTime() + seconds * 1000);
  return poller.poll();
}

beforeAll(async () => {
  database = await createTestDatabase();
  await insertNode(database.handle.db, spec, 1);
  poller = new StatsPoller(
    { db: database.handle.db, clients, logger, now: () => clock, masterCli },
    { intervalS: 10, nodeTimeoutMs: 500, rawRetentionS: 3600, rollupRetentionS: 86_400 },
  );
});
afterAll(async () => {
  await poller?.stop();
  await database?.drop();
});

describe('StatsPoller.poll on a node with a master CLI', () => {
  it('when a reload leaves sessions on the old worker, then the stored sessions and rates count both workers', async () => {
    state.current = { pid: 20, requests: 100, sessions: 4 };
    expect((await pollAfter(0)).nodes).toEqual([{ node: 'w1', ok: true, samples: 2 }]);
    expect(masterLines).toEqual(['show proc']);

    // Reload: worker 20 keeps its 4 sessions and takes no more; worker 30 has served 6 requests.
    state.old = [{ pid: 20, requests: 110, sessions: 4 }];
    state.current = { pid: 30, requests: 6, sessions: 1 };
    masterLines.length = 0;
    await pollAfter(2);
    expect(masterLines).toEqual(['show proc', '@!20 show stat -1 7 -1']);
    expect(await frontend()).toMatchObject({ sessions: 5, session_limit: 500, request_rate: 8, requests: '116' });

    // The old worker finishes: only the new one's sessions and delta remain.
    state.old = [];
    state.current = { pid: 30, requests: 16, sessions: 0 };
    await pollAfter(2);
    expect(await frontend()).toMatchObject({ sessions: 0, session_limit: 500, request_rate: 5 });
  });

  it('when the master stops answering, then the node is still polled from its worker, and the failure and recovery are logged once each', async () => {
    state.old = [{ pid: 30, requests: 16, sessions: 2 }];
    state.current = { pid: 40, requests: 0, sessions: 1 };
    state.masterUp = false;
    for (let i = 0; i < 3; i++) expect((await pollAfter(2)).nodes).toEqual([{ node: 'w1', ok: true, samples: 2 }]);
    expect((await frontend()).sessions).toBe(1);
    state.masterUp = true;
    await pollAfter(2);
    expect((await frontend()).sessions).toBe(3);
    await pollAfter(2);
    const w1 = logs.filter((l) => l.node === 'w1');
    expect(w1.map((l) => l.level)).toEqual(['warn', 'info']);
    expect(w1[0]!.error).toContain('ECONNREFUSED');
  });

  it('when an old worker exits between show proc and its read, then it is left out without a failure', async () => {
    const logged = logs.length;
    state.old = [{ pid: 30, requests: 16, sessions: 2 }];
    state.listed = [30, 31];
    await pollAfter(2);
    expect(masterLines.slice(-2).sort()).toEqual(['@!30 show stat -1 7 -1', '@!31 show stat -1 7 -1']);
    expect((await frontend()).sessions).toBe(3);
    expect(logs.length).toBe(logged);
  });
});
