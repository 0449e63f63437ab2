import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ControlPlaneClient, ControlPlaneError } from '../../../../src/fleet/agent/control-plane-client.js';

/** The agent's client against real local HTTP servers standing in for control-plane replicas. */

type Mode = 'ok' | '503' | 'hang';

interface Replica {
  readonly url: string;
  mode: Mode;
  readonly hits: string[];
  /** Requests held open in `hang` mode, to be cut as a crash would. */
  readonly held: http.ServerResponse[];
  close(): Promise<void>;
}

const servers: Replica[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function replica(mode: Mode): Promise<Replica> {
  const hits: string[] = [];
  const held: http.ServerResponse[] = [];
  const state = { mode };
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url?.split('?')[0]}`);
    req.resume();
    if (state.mode === 'hang') return void held.push(res);
    if (state.mode === '503') {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      return void res.end(JSON.stringify({ error: { code: 'unavailable', message: 'the database is unavailable' } }));
    }
    if (req.method === 'GET') return void res.writeHead(304).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closed = false;
  const r: Replica = {
    url,
    get mode() {
      return state.mode;
    },
    set mode(m: Mode) {
      state.mode = m;
    },
    hits,
    held,
    close: async () => {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
  servers.push(r);
  return r;
}

/** A URL nothing listens on: a port that was just free. */
async function deadUrl(): Promise<string> {
  const r = await replica('ok');
  await r.close();
  return r.url;
}

function client(urls: string[], onFailover?: (e: { from: string; to: string }) => void): ControlPlaneClient {
  return new ControlPlaneClient({
    urls,
    node: 'edge-1',
    token: 'sy_test',
    agentVersion: 'test',
    timeoutMs: 5_000,
    onFailover,
  });
}

const poll = (c: ControlPlaneClient) => c.fetchConfig({ etag: 'abc', waitSeconds: 1 });

describe('control-plane failover', () => {
  it('when the first replica is down, then calls go to the next one and stay there', async () => {
    const dead = await deadUrl();
    const b = await replica('ok');
    const failovers: { from: string; to: string }[] = [];
    const c = client([dead, b.url], (e) => failovers.push(e));
    expect(await poll(c)).toEqual({ changed: false });
    await c.report({ event: 'heartbeat', agentVersion: 'test' });
    expect(await poll(c)).toEqual({ changed: false });
    expect(c.replica).toBe(b.url);
    expect(b.hits).toEqual([
      'GET /v1/nodes/edge-1/config',
      'POST /v1/nodes/edge-1/status',
      'GET /v1/nodes/edge-1/config',
    ]);
    expect(failovers).toEqual([{ from: dead, to: b.url, error: expect.any(ControlPlaneError) }]); // once: it sticks
  });

  it('when a replica answers 503, then the call is answered by the next, and the failing one is not asked again while the other works', async () => {
    const a = await replica('503');
    const b = await replica('ok');
    const c = client([a.url, b.url]);
    for (let i = 0; i < 3; i++) expect(await poll(c)).toEqual({ changed: false });
    expect(a.hits).toHaveLength(1);
    expect(b.hits).toHaveLength(3);

    // Round robin: when the one it stuck to fails, it moves on to the first again.
    a.mode = 'ok';
    b.mode = '503';
    expect(await poll(c)).toEqual({ changed: false });
    expect(c.replica).toBe(a.url);
    expect([a.hits.length, b.hits.length]).toEqual([2, 4]);
  });

  it('when the replica holding a long poll dies, then the same call moves to the next one', async () => {
    const a = await replica('hang');
    const b = await replica('ok');
    const c = client([a.url, b.url]);
    const answer = poll(c);
    await vi.waitFor(() => expect(a.held).toHaveLength(1));
    await a.close(); // cuts the held connection, as a crashed replica would
    expect(await answer).toEqual({ changed: false });
    expect(c.replica).toBe(b.url);
  });

  it('when every replica fails, then the call fails with the last reason, naming the replica, and the next call starts at the next replica', async () => {
    const a = await replica('503');
    const dead = await deadUrl();
    const c = client([a.url, dead]);
    const error = await poll(c).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ControlPlaneError);
    expect((error as ControlPlaneError).failure).toBe('unreachable');
    expect((error as ControlPlaneError).message).toMatch(new RegExp(`^${dead}: .*ECONNREFUSED`));
    expect(a.hits).toHaveLength(1);
    expect(c.replica).toBe(dead);
    // The agent backs off and tries again; by then the first replica is back.
    a.mode = 'ok';
    expect(await poll(c)).toEqual({ changed: false });
    expect(c.replica).toBe(a.url);
  });

  it('does not fail over on answers every replica would give (401, 404)', async () => {
    const a = await replica('ok');
    const b = await replica('ok');
    const server401 = http.createServer((_req, res) =>
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"message":"bad token"}}'),
    );
    await new Promise<void>((ok) => server401.listen(0, '127.0.0.1', ok));
    try {
      const url = `http://127.0.0.1:${(server401.address() as AddressInfo).port}`;
      const c = client([url, a.url, b.url]);
      await expect(poll(c)).rejects.toMatchObject({
        failure: 'unauthorized',
        status: 401,
        message: 'HTTP 401: bad token',
      });
      expect(a.hits).toEqual([]);
      expect(c.replica).toBe(url);
    } finally {
      server401.closeAllConnections();
      await new Promise<void>((ok) => server401.close(() => ok()));
    }
  });

  it('keeps the single-replica error message as it was', async () => {
    const a = await replica('503');
    await expect(poll(client([a.url]))).rejects.toMatchObject({
      failure: 'server',
      status: 503,
      message: 'HTTP 503: the database is unavailable',
    });
  });
});
