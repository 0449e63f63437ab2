import https from 'node:https';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NginxStats } from '../../src/domain/nginx-runtime.js';
import { makeCert } from '../support/certs.js';
import { freePort, listen } from './haproxy-render-support.js';
import {
  get,
  httpCheck,
  LuaNginx,
  peer,
  startBackend,
  upstream,
  type Backend,
  type TestState,
} from './nginx-lua-observe-support.js';

/**
 * switchyard.health on real nginx with three workers: HTTP, HTTPS and TCP checks against loopback
 * backends, rise and fall, expected statuses, timeouts, one checker per node (counted at the
 * backend), the hand-over on reload and when the checker dies, and the balancer skipping down peers.
 */

const WORKERS = 3;
const INTERVAL = 300;

interface SeenCheck {
  readonly at: number;
  readonly path: string | undefined;
  readonly host: string | undefined;
  readonly status: number;
}

/** A backend that answers health checks with `status` (recording each) and other requests with its name. */
interface CheckedBackend extends Backend {
  readonly name: string;
  readonly checks: SeenCheck[];
  status: number;
}

async function checkedBackend(name: string): Promise<CheckedBackend> {
  const checks: SeenCheck[] = [];
  let status = 200;
  const backend = await startBackend((req, res) => {
    if (req.headers['user-agent'] === 'switchyard-health') {
      checks.push({ at: performance.now(), path: req.url, host: req.headers.host, status });
      res.writeHead(status).end();
      return;
    }
    res.writeHead(200).end(name);
  });
  return {
    ...backend,
    name,
    checks,
    get status() {
      return status;
    },
    set status(value: number) {
      status = value;
    },
  };
}

/** Closes a server and destroys the connections it still holds. */
function closing(server: net.Server): () => Promise<void> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return () =>
    new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
}

let node: LuaNginx;
let a: CheckedBackend;
let b: CheckedBackend;
const closers: (() => Promise<void>)[] = [];

const VIP = 'acme/web';
const UPSTREAM = 't_acme_web';

function peerOf(stats: NginxStats, name: string) {
  const entry = stats.peers[`${UPSTREAM}/${name}`];
  if (entry === undefined) throw new Error(`no peer ${name} in ${JSON.stringify(Object.keys(stats.peers))}`);
  return entry;
}

async function healthOf(name: string): Promise<{ health: string; lastCheck: string | null }> {
  const entry = peerOf(await node.stats(), name);
  return { health: entry.health, lastCheck: entry.lastCheck };
}

/**
 * The mean time (ms) between the checks seen since `from`: over a dozen checks, the backend's
 * own scheduling delays (a busy test process) even out, where a single gap would not.
 */
function meanGap(checks: readonly SeenCheck[], from = 0): number {
  const times = checks.filter((c) => c.at >= from).map((c) => c.at);
  return (times[times.length - 1]! - times[0]!) / (times.length - 1);
}

async function setState(state: TestState): Promise<void> {
  await node.setState(state);
}

async function membersServing(count: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const reply = await get(node.port(VIP));
    expect(reply.status).toBe(200);
    seen.add(reply.body);
  }
  return seen;
}

beforeAll(async () => {
  a = await checkedBackend('a');
  b = await checkedBackend('b');
  closers.push(a.close, b.close);
  node = await LuaNginx.start({ workers: WORKERS, servers: [{ tenant: 'acme', vip: 'web', upstream: UPSTREAM }] });
  expect(node.workers()).toHaveLength(WORKERS);
});

afterAll(async () => {
  await node?.stop();
  for (const close of closers) await close();
});

describe('active health checks on nginx', () => {
  it('checks a peer once per interval for the whole node, not once per worker, with the path and Host of the check', async () => {
    await setState({
      upstreams: { [UPSTREAM]: upstream('acme', 'once', [peer('a', a.port)], httpCheck({ intervalMs: INTERVAL })) },
      caps: {},
    });
    await expect.poll(() => a.checks.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(12);
    // Three workers each checking would put about three checks in every interval.
    expect(meanGap(a.checks)).toBeGreaterThan(INTERVAL * 0.8);
    expect(meanGap(a.checks)).toBeLessThan(INTERVAL * 1.5);
    expect(a.checks.every((c) => c.path === '/healthz' && c.host === '127.0.0.1')).toBe(true);
    expect(await healthOf('a')).toEqual({ health: 'up', lastCheck: 'HTTP 200' });
    expect(node.workers()).toContain(await node.checker());

    const before = a.checks.length;
    await setState({
      upstreams: {
        [UPSTREAM]: upstream(
          'acme',
          'once',
          [peer('a', a.port)],
          httpCheck({ path: '/ready?deep=1', host: 'shop.example.test' }),
        ),
      },
      caps: {},
    });
    await expect
      .poll(() => a.checks.slice(before).find((c) => c.path === '/ready?deep=1'), { timeout: 5000 })
      .toMatchObject({ host: 'shop.example.test' });
  });

  it('takes a peer down after fall failed checks and brings it back after rise good ones; traffic avoids it meanwhile', async () => {
    a.status = 200;
    b.status = 200;
    const check = httpCheck({ intervalMs: INTERVAL, rise: 3, fall: 2 });
    await setState({
      upstreams: { [UPSTREAM]: upstream('acme', 'flap', [peer('a', a.port), peer('b', b.port)], check) },
      caps: {},
    });
    await expect.poll(() => healthOf('b'), { timeout: 5000 }).toEqual({ health: 'up', lastCheck: 'HTTP 200' });
    expect(await membersServing(6)).toEqual(new Set(['a', 'b']));

    b.status = 500;
    const failedFrom = b.checks.length;
    await expect
      .poll(() => healthOf('b'), { timeout: 5000, interval: 20 })
      .toEqual({ health: 'down', lastCheck: 'HTTP 500' });
    const failed = b.checks.slice(failedFrom).filter((c) => c.status === 500).length;
    expect(failed).toBeGreaterThanOrEqual(2);
    expect(failed).toBeLessThanOrEqual(3); // fall, or one more answered while the report was read
    expect(await membersServing(10)).toEqual(new Set(['a']));

    b.status = 200;
    const goodFrom = b.checks.length;
    await expect
      .poll(() => healthOf('b'), { timeout: 5000, interval: 20 })
      .toEqual({ health: 'up', lastCheck: 'HTTP 200' });
    const good = b.checks.slice(goodFrom).filter((c) => c.status === 200).length;
    expect(good).toBeGreaterThanOrEqual(3);
    expect(good).toBeLessThanOrEqual(4);
    expect(await membersServing(6)).toEqual(new Set(['a', 'b']));
  });

  it('counts a status as up only inside the expected ranges', async () => {
    a.status = 404;
    b.status = 503;
    const check = httpCheck({
      intervalMs: INTERVAL,
      rise: 1,
      fall: 1,
      expectedStatus: [
        [200, 299],
        [404, 404],
      ],
    });
    await setState({
      upstreams: { [UPSTREAM]: upstream('acme', 'ranges', [peer('a', a.port), peer('b', b.port)], check) },
      caps: {},
    });
    await expect.poll(() => healthOf('a'), { timeout: 5000 }).toEqual({ health: 'up', lastCheck: 'HTTP 404' });
    await expect.poll(() => healthOf('b'), { timeout: 5000 }).toEqual({ health: 'down', lastCheck: 'HTTP 503' });
    a.status = 200;
    b.status = 200;
  });

  it('checks over HTTPS with the Host as SNI and without verifying the certificate', async () => {
    const cert = makeCert('health.example.test');
    const seen: { servername: string | false | null; host: string | undefined }[] = [];
    const server = https.createServer({ cert: cert.certificate, key: cert.privateKey }, (req, res) => {
      seen.push({ servername: (req.socket as TLSSocket).servername, host: req.headers.host });
      res.writeHead(204).end();
    });
    closers.push(closing(server));
    const port = await listen(server, '127.0.0.1');
    const check = httpCheck({ type: 'https', host: 'health.example.test', rise: 1, fall: 1 });
    await setState({
      upstreams: {
        [UPSTREAM]: upstream('acme', 'tls', [peer('secure', port), peer('plain', a.port)], check),
      },
      caps: {},
    });
    await expect.poll(() => healthOf('secure'), { timeout: 5000 }).toEqual({ health: 'up', lastCheck: 'HTTP 204' });
    expect(seen[0]).toEqual({ servername: 'health.example.test', host: 'health.example.test' });
    // A plain HTTP member does not complete a TLS handshake.
    await expect.poll(() => healthOf('plain'), { timeout: 5000 }).toMatchObject({ health: 'down' });
    expect((await healthOf('plain')).lastCheck).toMatch(/^TLS: /);
  });

  it('checks TCP by connecting: a listener is up, a closed port is down with connection refused', async () => {
    const listener = net.createServer((socket) => socket.destroy());
    closers.push(closing(listener));
    const open = await listen(listener, '127.0.0.1');
    const closed = await freePort('127.0.0.1');
    const check = httpCheck({ type: 'tcp', rise: 1, fall: 1 });
    await setState({
      upstreams: { [UPSTREAM]: upstream('acme', 'tcp', [peer('open', open), peer('closed', closed)], check) },
      caps: {},
    });
    await expect.poll(() => healthOf('open'), { timeout: 5000 }).toEqual({ health: 'up', lastCheck: 'connected' });
    await expect
      .poll(() => healthOf('closed'), { timeout: 5000 })
      .toEqual({ health: 'down', lastCheck: 'connection refused' });
  });

  it('gives up on a peer that does not answer within timeoutMs', async () => {
    const held: { opened: number; closed?: number }[] = [];
    const silent = net.createServer((socket) => {
      const entry: { opened: number; closed?: number } = { opened: performance.now() };
      held.push(entry);
      socket.on('end', () => (entry.closed = performance.now())); // nginx gave up and closed its side
      socket.resume(); // (a paused socket never reports its end)
      socket.on('error', () => undefined);
    });
    closers.push(closing(silent));
    const port = await listen(silent, '127.0.0.1');
    await setState({
      upstreams: {
        [UPSTREAM]: upstream(
          'acme',
          'slow',
          [peer('silent', port)],
          httpCheck({ intervalMs: 500, timeoutMs: 150, fall: 1 }),
        ),
      },
      caps: {},
    });
    await expect.poll(() => healthOf('silent'), { timeout: 5000 }).toEqual({ health: 'down', lastCheck: 'timeout' });
    await expect.poll(() => held.some((h) => h.closed !== undefined), { timeout: 2000 }).toBe(true);
    const first = held.find((h) => h.closed !== undefined)!;
    expect(first.closed! - first.opened).toBeGreaterThanOrEqual(100);
    expect(first.closed! - first.opened).toBeLessThan(1000);
  });

  it('stops checking a peer removed from the state, and forgets the verdict of a peer whose check is removed', async () => {
    a.status = 200;
    b.status = 500;
    const check = httpCheck({ intervalMs: INTERVAL, rise: 1, fall: 2 });
    await setState({
      upstreams: { [UPSTREAM]: upstream('acme', 'gone', [peer('a', a.port), peer('b', b.port)], check) },
      caps: {},
    });
    await expect.poll(() => healthOf('b'), { timeout: 5000 }).toMatchObject({ health: 'down' });
    expect(await membersServing(4)).toEqual(new Set(['a']));

    // The check goes: b's "down" goes with it, so traffic reaches b again.
    await setState({
      upstreams: { [UPSTREAM]: upstream('acme', 'gone', [peer('a', a.port), peer('b', b.port)]) },
      caps: {},
    });
    await expect.poll(() => healthOf('b'), { timeout: 5000 }).toEqual({ health: 'unchecked', lastCheck: null });
    expect(await membersServing(4)).toEqual(new Set(['a', 'b']));

    // b leaves the pool: once the checker has rebuilt its list (within a second) nothing checks b.
    await setState({ upstreams: { [UPSTREAM]: upstream('acme', 'gone', [peer('a', a.port)], check) }, caps: {} });
    const removedAt = performance.now();
    await expect
      .poll(() => a.checks.filter((c) => c.at > removedAt + 1200).length, { timeout: 5000 })
      .toBeGreaterThan(2);
    // Sampling real traffic for something that must not happen: checks of b after the rebuild.
    const until = performance.now() + 3 * INTERVAL;
    await expect.poll(() => performance.now() > until, { timeout: 5000 }).toBe(true);
    expect(b.checks.filter((c) => c.at > removedAt + 1200)).toEqual([]);
    b.status = 200;
  });

  it('hands the checks to a worker of the new generation on reload, still once per interval, keeping verdicts', async () => {
    a.status = 200;
    b.status = 500;
    const check = httpCheck({ intervalMs: INTERVAL, rise: 2, fall: 2 });
    await setState({
      upstreams: { [UPSTREAM]: upstream('acme', 'reload', [peer('a', a.port), peer('b', b.port)], check) },
      caps: {},
    });
    await expect.poll(() => healthOf('b'), { timeout: 5000 }).toMatchObject({ health: 'down' });
    const oldChecker = await node.checker();

    const fresh = await node.reload(WORKERS);
    expect(fresh).not.toContain(oldChecker);
    // b is still down the moment the new workers serve: the verdict is in the dictionary, not in a worker.
    expect(await healthOf('b')).toEqual({ health: 'down', lastCheck: 'HTTP 500' });
    expect(await membersServing(4)).toEqual(new Set(['a']));
    await expect.poll(() => node.checker(), { timeout: 5000 }).toSatisfy((pid) => fresh.includes(pid as number));

    const from = performance.now();
    await expect
      .poll(() => a.checks.filter((c) => c.at >= from).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(10);
    expect(meanGap(a.checks, from)).toBeGreaterThan(INTERVAL * 0.8);
    expect(meanGap(a.checks, from)).toBeLessThan(INTERVAL * 1.5);
    b.status = 200;
    await expect.poll(() => healthOf('b'), { timeout: 5000 }).toEqual({ health: 'up', lastCheck: 'HTTP 200' });
  });

  it('logs no errors but the failed handshakes of the HTTPS check against a plain member', () => {
    // nginx itself logs a cosocket's failed TLS handshake at error level, whatever lua_socket_log_errors says.
    const errors = node.errors().filter((line) => !line.includes('SSL_do_handshake() failed'));
    expect(errors.join('\n')).toBe('');
  });

  it('replaces a checker that dies, within the lease', async () => {
    a.status = 200;
    await setState({
      upstreams: { [UPSTREAM]: upstream('acme', 'crash', [peer('a', a.port)], httpCheck({ intervalMs: INTERVAL })) },
      caps: {},
    });
    await expect.poll(() => node.checker(), { timeout: 5000 }).not.toBeNull();
    const dead = await node.checker();
    process.kill(dead!, 'SIGKILL'); // a worker of the nginx this file started
    const killedAt = performance.now();
    await expect.poll(() => node.checker(), { timeout: 10_000 }).toSatisfy((pid) => pid !== null && pid !== dead);
    await expect.poll(() => a.checks.filter((c) => c.at > killedAt).length, { timeout: 10_000 }).toBeGreaterThan(3);
    expect(node.workers()).toHaveLength(WORKERS);
  }, 20_000);
});
