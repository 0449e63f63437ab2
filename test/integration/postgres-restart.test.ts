import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startControlPlane, type ControlPlane } from '../../src/main.js';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';

/** One answered write: what was asked for and what the client was told. */
interface Outcome {
  readonly kind: 'tenant' | 'pool';
  readonly tenant: string;
  readonly name: string;
  readonly status: number;
  readonly code: string | null;
  readonly retryAfter: string | null;
}

const WRITERS = 6;
/** Per writer: bounds the run even if the faults below never end. */
const MAX_WRITES = 3_000;
const RESUME_MS = 2_000;

let pgServer: PrivatePostgres | undefined;
let cp: ControlPlane | undefined;
let token = '';
const uncaught: unknown[] = [];
const warnings: Error[] = [];
const onUncaught = (err: unknown) => void uncaught.push(err);
const onWarning = (w: Error) => void warnings.push(w);

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  process.on('warning', onWarning);
  pgServer = await startPrivatePostgres();
  token = `sy_test_admin_${randomBytes(16).toString('hex')}`;
  const config = loadConfig({
    DATABASE_URL: pgServer.url,
    PORT: '0',
    HOST: '127.0.0.1',
    SWITCHYARD_ADMIN_TOKEN: token,
    SWITCHYARD_SECRET_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    SWITCHYARD_TOKEN_CACHE_MS: '0',
    SWITCHYARD_RECONCILE: 'false',
    SWITCHYARD_REBALANCE: 'false',
    SWITCHYARD_STATS: 'false',
    SWITCHYARD_LEADER_RETRY_MS: '200',
  });
  cp = await startControlPlane(config, createLogger(config.logLevel));
});

afterAll(async () => {
  try {
    await cp?.stop();
  } finally {
    await pgServer?.destroy();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    process.off('warning', onWarning);
  }
});

async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(cp!.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** Writers that create tenants and pools until told to stop, recording every answer. */
function startWriters(outcomes: Outcome[]): { stop(): Promise<void> } {
  let stopping = false;
  const writer = async (w: number) => {
    const home = `home-${w}`;
    for (let seq = 0; seq < MAX_WRITES && !stopping; seq++) {
      const asPool = seq % 2 === 1;
      const tenant = asPool ? home : `w${w}-t${seq}`;
      const name = asPool ? `p${seq}` : tenant;
      const res = asPool
        ? await call('POST', `/v1/tenants/${home}/pools`, { name })
        : await call('POST', '/v1/tenants', { id: tenant });
      outcomes.push({
        kind: asPool ? 'pool' : 'tenant',
        tenant,
        name,
        status: res.status,
        code: res.body?.error?.code ?? null,
        retryAfter: res.headers.get('retry-after'),
      });
      // A writer that was refused backs off a little, as a client honouring Retry-After would (scaled down).
      if (res.status >= 500) await new Promise((r) => setTimeout(r, 20));
    }
  };
  const running = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  return {
    stop: async () => {
      stopping = true;
      await running;
    },
  };
}

/** Resolves once a write answers 2xx again, failing after RESUME_MS. */
async function expectResumedWithin(label: string): Promise<void> {
  let n = 0;
  await expect
    .poll(async () => (await call('POST', '/v1/tenants', { id: `probe-${label}-${++n}` })).status, {
      timeout: RESUME_MS,
      interval: 50,
    })
    .toBe(201);
}

const tenantsSeen = (outcomes: Outcome[]) => outcomes.filter((o) => o.status >= 500).length;

describe('when PostgreSQL restarts under write load', () => {
  it('the control plane answers 503 unavailable while it is down, resumes within 2 s, and loses no acknowledged write', async () => {
    for (let w = 0; w < WRITERS; w++) expect((await call('POST', '/v1/tenants', { id: `home-${w}` })).status).toBe(201);
    const outcomes: Outcome[] = [];
    const writers = startWriters(outcomes);
    try {
      await expect.poll(() => outcomes.filter((o) => o.status === 201).length, { timeout: 10_000 }).toBeGreaterThan(20);

      // 1. A fast restart: backends are terminated mid-transaction, idle and checked-out connections die.
      await pgServer!.restart();
      await expectResumedWithin('restart');

      // 2. Every client connection killed from outside, as an operator would.
      const killed = outcomes.length;
      await expect.poll(() => outcomes.length - killed, { timeout: 10_000 }).toBeGreaterThan(20);
      const admin = new pg.Client({ connectionString: pgServer!.url });
      await admin.connect();
      try {
        const { rowCount } = await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid() and backend_type = 'client backend'`,
        );
        expect(rowCount).toBeGreaterThan(0);
      } finally {
        await admin.end();
      }
      await expectResumedWithin('kill');

      // 3. Down for a while: every request in the meantime is refused with 503 and a Retry-After.
      const resumed = outcomes.length;
      await expect.poll(() => outcomes.length - resumed, { timeout: 10_000 }).toBeGreaterThan(20);
      await pgServer!.stop();
      const down = await call('POST', '/v1/tenants', { id: 'while-down' });
      expect(down.status).toBe(503);
      expect(down.body.error.code).toBe('unavailable');
      expect(Number(down.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await call('GET', '/v1/tenants')).status).toBe(503);
      expect((await fetch(`${cp!.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${cp!.url}/healthz`)).status).toBe(200);
      await expect.poll(() => tenantsSeen(outcomes), { timeout: 10_000 }).toBeGreaterThan(0);
      await pgServer!.start();
      await expectResumedWithin('stop');
      expect((await fetch(`${cp!.url}/readyz`)).status).toBe(200);
    } finally {
      await writers.stop();
    }

    // Never a 500: every refusal is a 503 `unavailable` with a Retry-After of a few seconds.
    const refused = outcomes.filter((o) => o.status !== 201);
    expect(refused.length).toBeGreaterThan(0);
    expect(
      refused.filter(
        (o) =>
          o.status !== 503 || o.code !== 'unavailable' || !(Number(o.retryAfter) >= 1 && Number(o.retryAfter) <= 10),
      ),
    ).toEqual([]);

    // Every acknowledged write is stored, and nothing refused is.
    const { rows: tenants } = await readRows(`select id from tenants`);
    const { rows: pools } = await readRows(`select tenant_id || '/' || name as id from pools`);
    const stored = new Set([...tenants, ...pools].map((r) => r.id as string));
    const key = (o: Outcome) => (o.kind === 'tenant' ? o.tenant : `${o.tenant}/${o.name}`);
    expect(outcomes.filter((o) => o.status === 201 && !stored.has(key(o)))).toEqual([]);
    expect(outcomes.filter((o) => o.status !== 201 && stored.has(key(o)))).toEqual([]);
    expect(stored.has('while-down')).toBe(false);

    // The process survived on its own: no unhandled error, no pg misuse warning.
    expect(uncaught).toEqual([]);
    expect(warnings.filter((w) => /already executing a query/.test(w.message)).map((w) => w.message)).toEqual([]);
  }, 120_000);
});

async function readRows(text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: pgServer!.url });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}
