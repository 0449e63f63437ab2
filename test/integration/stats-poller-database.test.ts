import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertNode } from '../../src/db/node-repository.js';
import type { NodeSpec } from '../../src/db/node-repository.js';
import type { RuntimeCommand } from '../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult } from '../../src/fleet/runtime-api/runtime-executor.js';
import { StatsPoller } from '../../src/jobs/stats-poller.js';
import type { Logger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/** The poller over a real database with fake Runtime API clients: what it stores, logs and skips. */

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
  'dses',
];
const TYPE = { frontend: 0, backend: 1, server: 2 } as const;

/** `refused`: connections the frontend refused at the tenant's cap (`dses`). */
function showStat(requests: number, sessions: number, refused = 0): string {
  const rows = [
    [
      'fe_t1_web',
      'FRONTEND',
      sessions,
      1000,
      requests,
      2,
      'OPEN',
      TYPE.frontend,
      1,
      '',
      requests - 2,
      2,
      0,
      requests,
      refused,
    ],
    ['be_t1_web', 'm1', sessions, '', requests, '', 'UP', TYPE.server, 1, 'L7OK', requests - 2, 0, 0, '', ''],
    ['be_t1_web', 'BACKEND', sessions, '', requests, 0, 'UP', TYPE.backend, 1, '', requests - 2, 0, 0, requests, ''],
    ['sy_unrouted_http', 'BACKEND', 0, '', 0, 0, 'UP', TYPE.backend, 0, '', 0, 0, 0, 0, ''],
  ];
  return `${[`# ${COLUMNS.join(',')}`, ...rows.map((r) => r.join(','))].join('\n')}\n`;
}

let database: TestDatabase;
const replies = new Map<string, (line: string) => { ok: boolean; text: string }>();
const sent: { node: string; line: string; timeoutMs: number | undefined }[] = [];
const logs: { level: string; msg: string; node?: string }[] = [];
const usage = new Map<string, number>();
let clock = new Date('2026-03-01T12:00:05Z');

const clients = {
  client: (node: string) => ({
    execute: async (commands: readonly RuntimeCommand[], options?: { timeoutMs?: number }): Promise<CommandResult[]> =>
      commands.map((command) => {
        sent.push({ node, line: command.line, timeoutMs: options?.timeoutMs });
        const reply = replies.get(node)?.(command.line) ?? { ok: false, text: 'connect ECONNREFUSED' };
        return reply.ok
          ? { status: 'ok', command, output: reply.text }
          : { status: 'not-executed', command, message: reply.text };
      }),
  }),
};
const logger = {
  warn: (o: { node?: string }, msg: string) => logs.push({ level: 'warn', msg, node: o.node }),
  info: (o: { node?: string }, msg: string) => logs.push({ level: 'info', msg, node: o.node }),
} as unknown as Logger;
const metrics = {
  tenantUsage: {
    reset: () => usage.clear(),
    set: (labels: { tenant: string; resource: string }, value: number) =>
      void usage.set(`${labels.tenant}/${labels.resource}`, value),
  },
};

let poller: StatsPoller;

const node = (name: string, kind: 'haproxy' | 'nginx', port = 1): NodeSpec => ({
  name,
  kind,
  group: 'default',
  zone: 'z1',
  runtimeAddress: kind === 'haproxy' ? { host: '127.0.0.1', port } : null,
  capacity: { vcpu: 1, memoryMb: 512 },
  configDir: '/etc/x',
});

beforeAll(async () => {
  database = await createTestDatabase();
  const db = database.handle.db;
  for (const n of [node('n1', 'haproxy', 1), node('n2', 'haproxy', 2), node('n3', 'nginx')]) await insertNode(db, n, 1);
  poller = new StatsPoller(
    { db, clients, logger, metrics, now: () => clock },
    { intervalS: 10, nodeTimeoutMs: 750, rawRetentionS: 3600, rollupRetentionS: 86_400 },
  );
});
afterAll(async () => {
  await poller?.stop();
  await database?.drop();
});

describe('StatsPoller.poll', () => {
  it('when one node answers and another does not, then the first is stored with rates, the second logged once, NGINX skipped', async () => {
    const db = database.handle.db;
    let requests = 100;
    let refused = 4;
    // The caps map holds t1's connection cap (40): what its frontend sample reports as its limit, not maxconn 1000.
    replies.set('n1', (line) => ({
      ok: true,
      text: line.startsWith('show map') ? '0x1 t1 50\n0x2 t1.conn 40\n' : showStat(requests, 3, refused),
    }));
    // The rebalancer is called once the poll's samples are stored, so it plans on them.
    const storedWhenCalled: number[] = [];
    poller.onPolled(
      () =>
        void db
          .selectFrom('stat_samples')
          .select('at')
          .where('node_name', '=', 'n1')
          .execute()
          .then((r) => storedWhenCalled.push(r.length)),
    );
    const first = await poller.poll();
    expect(first.skipped).toEqual(['n3']);
    expect(first.nodes).toEqual([
      { node: 'n1', ok: true, samples: 3 },
      { node: 'n2', ok: false, error: 'cannot read stats: connect ECONNREFUSED' },
    ]);
    expect(sent.map((s) => `${s.node} ${s.line} ${s.timeoutMs}`)).toEqual([
      'n1 show stat -1 7 -1 750',
      'n1 show map /etc/x/maps/tenant-caps.map 750',
      'n2 show stat -1 7 -1 750',
      'n2 show map /etc/x/maps/tenant-caps.map 750',
    ]);

    requests = 150;
    refused = 24;
    clock = new Date(clock.getTime() + 10_000);
    await poller.poll();
    await expect.poll(() => storedWhenCalled).toEqual([3, 6]);
    const fe = await db
      .selectFrom('stat_samples')
      .selectAll()
      .where('node_name', '=', 'n1')
      .where('kind', '=', 'frontend')
      .orderBy('at')
      .execute();
    expect(fe.map((r) => r.request_rate)).toEqual([null, 5]);
    expect(fe.map((r) => r.rate_2xx)).toEqual([null, 5]);
    expect(fe[1]).toMatchObject({
      tenant_id: 't1',
      name: 'web',
      sessions: 3,
      session_limit: 40,
      denied_rate: 0,
      refused_rate: 2,
    });
    const member = await db
      .selectFrom('stat_samples')
      .selectAll()
      .where('kind', '=', 'member')
      .executeTakeFirstOrThrow();
    expect(member).toMatchObject({ name: 'm1', pool: 'web', status: 'UP', check_status: 'L7OK' });
    expect(usage.get('t1/connections')).toBe(3);
    expect(usage.get('t1/requests_per_second')).toBe(5);

    const rollup = await db
      .selectFrom('stat_rollups')
      .selectAll()
      .where('node_name', '=', 'n1')
      .where('kind', '=', 'frontend')
      .execute();
    expect(rollup).toHaveLength(1);
    expect(rollup[0]).toMatchObject({ samples: 2, rated: 1, sessions_sum: 6, sessions_max: 3, request_rate_sum: 5 });
    expect(await db.selectFrom('stat_samples').select('node_name').where('node_name', '!=', 'n1').execute()).toEqual(
      [],
    );
    expect(logs.filter((l) => l.node === 'n2')).toEqual([
      { level: 'warn', msg: expect.stringContaining('failed'), node: 'n2' },
    ]);
  });

  it('when a failing node answers again, then its recovery is logged once', async () => {
    replies.set('n2', (line) =>
      line.startsWith('show map') ? { ok: false, text: 'Unknown map identifier' } : { ok: true, text: showStat(10, 0) },
    );
    clock = new Date(clock.getTime() + 10_000);
    await poller.poll();
    clock = new Date(clock.getTime() + 10_000);
    await poller.poll();
    expect(logs.filter((l) => l.node === 'n2').map((l) => l.level)).toEqual(['warn', 'info']);
  });

  it('when samples and rollups age past retention, then a poll deletes them', async () => {
    const db = database.handle.db;
    replies.clear();
    clock = new Date(clock.getTime() + 2 * 86_400_000);
    const result = await poller.poll();
    expect(result.pruned!.raw).toBeGreaterThan(0);
    expect(result.pruned!.rollups).toBeGreaterThan(0);
    expect(await db.selectFrom('stat_samples').select('at').execute()).toEqual([]);
    expect(await db.selectFrom('stat_rollups').select('minute').execute()).toEqual([]);
  });
});
