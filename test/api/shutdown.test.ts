import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { startTestApp } from '../support/app.js';

/**
 * Sessions of the database waiting for a lock (the writes queued behind a transaction that holds
 * it), read on a client of its own: inside a transaction, pg_stat_activity stays as first read.
 */
async function lockWaiters(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
    );
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

describe('stopping the control plane', () => {
  it('answers waiting long polls at once instead of holding shutdown for their wait', async () => {
    const app = await startTestApp();
    await app.admin('POST', '/v1/nodes', { name: 'n1', kind: 'nginx', capacity: { vcpu: 1, memoryMb: 512 } });
    const agent = app.as(await app.token('agent', { node: 'n1' }));
    const first = await agent('GET', '/v1/nodes/n1/config');
    const listening = app.cp.feed.listenerCount('change');
    const polling = agent('GET', '/v1/nodes/n1/config?wait=60', undefined, {
      'if-none-match': first.headers.get('etag')!,
    });
    // The stop must find the poll waiting (listening for commits), or it would answer at once anyway.
    await vi.waitFor(() => expect(app.cp.feed.listenerCount('change')).toBeGreaterThan(listening), {
      timeout: 10_000,
      interval: 5,
    });
    const started = Date.now();
    await app.stop();
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await polling).status).toBe(304);
  });

  it('lets writes whose clients hung up commit before the database closes', async () => {
    const app = await startTestApp();
    await app.admin('POST', '/v1/tenants', { id: 't1' });
    await app.admin('POST', '/v1/tenants/t1/pools', { name: 'web' });
    // Hold the revision lock, so the writes below queue behind it: more of them than the pool has
    // connections (10), so some are still waiting for a connection when the stop begins.
    const holder = new pg.Client({ connectionString: app.database.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query('update revision_counter set revision = revision where id = 1');
    const aborts = Array.from({ length: 14 }, () => new AbortController());
    const writes = aborts.map((abort, i) =>
      fetch(`${app.url}/v1/tenants/t1/pools/web/members`, {
        method: 'POST',
        headers: { authorization: `Bearer ${app.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `m${i}`, address: `10.0.0.${i + 1}`, port: 80 }),
        signal: abort.signal,
      }).catch(() => 'hung up'),
    );
    // Every pool connection is waiting on the lock (the other writes wait for a connection).
    await expect.poll(() => lockWaiters(app.database.url), { timeout: 10_000, interval: 20 }).toBe(10);
    for (const abort of aborts) abort.abort();
    expect(await Promise.all(writes)).toEqual(aborts.map(() => 'hung up'));
    const stopping = app.cp.stop();
    // The server has stopped listening: the stop is waiting for the hung-up writes, not ahead of them.
    await vi.waitFor(() => expect(app.cp.server.listening).toBe(false), { timeout: 10_000, interval: 5 });
    await holder.query('rollback');
    await stopping;
    const { rows } = await holder.query("select name from members where tenant_id = 't1' order by name");
    await holder.end();
    await app.database.drop();
    // Every write ran to its commit; none met a closed database.
    expect(rows.map((r) => r.name).sort()).toEqual(aborts.map((_, i) => `m${i}`).sort());
  });
});
