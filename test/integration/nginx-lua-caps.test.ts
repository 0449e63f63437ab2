import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  get,
  LuaNginx,
  peer,
  startBackend,
  upstream,
  type Backend,
  type TestState,
} from './nginx-lua-observe-support.js';

/**
 * switchyard.caps on real nginx with two workers: the connection cap (503 over maxConnections
 * requests in flight, after waiting up to SLOT_QUEUE_MS for a slot), the sliding-second rate cap
 * (429, counting admitted requests only, after waiting up to a second), slots handed from ending
 * requests to waiting ones in both workers without ever exceeding the cap, caps
 * changed in the dictionary applying to the next request with no reload, no caps meaning no limit,
 * and in-flight counts returning to zero however a request ends.
 */

const ACME = 'acme/web';
/** caps.lua's SLOT_QUEUE_S: how long a request waits for an in-flight slot before its 503. */
const SLOT_QUEUE_MS = 10_000;
const GLOBEX = 'globex/shop';

let node: LuaNginx;
let backend: Backend;
/** Requests to /hold wait here until released. */
const held: http.ServerResponse[] = [];

function release(): void {
  for (const res of held.splice(0)) res.writeHead(200).end('released');
}

function state(caps: TestState['caps']): TestState {
  return {
    upstreams: {
      t_acme_web: upstream('acme', 'web', [peer('m1', backend.port)]),
      t_globex_shop: upstream('globex', 'shop', [peer('m1', backend.port)]),
    },
    caps,
  };
}

/** Starts a GET that the backend holds; resolves with its status once released. */
function holding(port: number): { done: Promise<number>; abort(): void } {
  let request: http.ClientRequest | undefined;
  const done = new Promise<number>((resolve, reject) => {
    request = http.get({ host: '127.0.0.1', port, path: '/hold', agent: false, timeout: 20_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    request.on('error', reject);
  });
  return { done, abort: () => request?.destroy() };
}

beforeAll(async () => {
  backend = await startBackend((req, res) => {
    if (req.url === '/hold') held.push(res);
    else res.writeHead(200).end('ok');
  });
  node = await LuaNginx.start({
    workers: 2,
    servers: [
      { tenant: 'acme', vip: 'web', upstream: 't_acme_web' },
      { tenant: 'globex', vip: 'shop', upstream: 't_globex_shop' },
    ],
  });
});

afterAll(async () => {
  release();
  await node?.stop();
  await backend?.close();
});

describe('runtime caps on nginx', () => {
  it('does not limit a tenant without a caps entry', async () => {
    await node.setState(state({ acme: { maxConnections: 1, requestsPerSecond: 1 } }));
    const statuses: number[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const replies = await Promise.all(Array.from({ length: 40 }, () => get(node.port(GLOBEX))));
      statuses.push(...replies.map((r) => r.status));
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it('refuses requests over maxConnections with 503, and applies a changed cap to the next request without a reload', async () => {
    await node.setState(state({ acme: { maxConnections: 3, requestsPerSecond: 1000 } }));
    const workers = node.workers();
    const slow = [holding(node.port(ACME)), holding(node.port(ACME)), holding(node.port(ACME))];
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(3);
    // The fourth waits for a slot; a cap raised meanwhile admits it, no reload and no new request needed.
    const fourth = get(node.port(ACME), '/', SLOT_QUEUE_MS + 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect((await node.stats()).tenants.acme).toMatchObject({ active: 3 });
    // Another tenant's cap is its own.
    expect((await get(node.port(GLOBEX))).status).toBe(200);
    await node.setState(state({ acme: { maxConnections: 4, requestsPerSecond: 1000 } }));
    expect((await fourth).status).toBe(200);

    await node.setState(state({ acme: { maxConnections: 2, requestsPerSecond: 1000 } }));
    expect((await get(node.port(ACME), '/', SLOT_QUEUE_MS + 5000)).status).toBe(503);

    release();
    expect(await Promise.all(slow.map((s) => s.done))).toEqual([200, 200, 200]);
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
    expect((await get(node.port(ACME))).status).toBe(200);
    expect(node.workers()).toEqual(workers); // no reload
  });

  it('gives a tenant sending three times its request rate about its cap every second, and 429 for what cannot be admitted within the queue time', async () => {
    const CAP = 40;
    const SECONDS = 5;
    await node.setState(state({ acme: { maxConnections: 1000, requestsPerSecond: CAP } }));
    // Sockets enough for every request waiting over the cap: none waits in the client instead.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
    /** Each request's status and when it was answered (ms from the start): a request over the cap waits before it is admitted. */
    const sent: Promise<{ status: number; at: number }>[] = [];
    const send = () =>
      new Promise<{ status: number; at: number }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: node.port(ACME), path: '/', agent, timeout: 5000 }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, at: performance.now() - start }));
        });
        req.on('error', reject);
      });
    const start = performance.now();
    let rate = -1;
    // Paced by the clock rather than by a timer per request: about 3 × CAP requests every second.
    for (let i = 0; i < 3 * CAP * SECONDS; i++) {
      const due = start + (i * 1000) / (3 * CAP);
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      sent.push(send());
      if (i === 3 * CAP * 3) rate = (await node.stats()).tenants.acme!.requestsPerSecond;
    }
    const answers = await Promise.all(sent);
    agent.destroy();
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200, 429]));

    // Admissions counted in the second they were answered (the member answers at once).
    const perSecond = Array.from({ length: SECONDS }, () => 0);
    for (const a of answers) {
      const second = Math.floor(a.at / 1000);
      if (a.status === 200 && second < SECONDS) perSecond[second]! += 1;
    }
    // The first second also gets the burst an empty window admits; from then on, about the cap.
    for (const admitted of perSecond.slice(1)) {
      expect(admitted, `admitted per second: ${perSecond.join(', ')}`).toBeGreaterThanOrEqual(CAP * 0.9);
      expect(admitted, `admitted per second: ${perSecond.join(', ')}`).toBeLessThanOrEqual(CAP * 1.1);
    }
    expect(rate).toBeGreaterThanOrEqual(CAP * 0.8);
    expect(rate).toBeLessThanOrEqual(CAP * 1.1);
  });

  it('returns the in-flight counts to zero however requests end: served, refused, denied or abandoned by the client', async () => {
    await node.setState(state({ acme: { maxConnections: 2, requestsPerSecond: 1000 } }));
    const first = holding(node.port(ACME));
    const abandoned = holding(node.port(ACME));
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(2);
    const over = await Promise.all(Array.from({ length: 10 }, () => get(node.port(ACME), '/', SLOT_QUEUE_MS + 5000)));
    expect(new Set(over.map((r) => r.status))).toEqual(new Set([503]));
    abandoned.abort();
    await abandoned.done.catch(() => undefined);
    // nginx notices the client left when the backend answers; until then the request is in flight.
    release();
    expect(await first.done).toBe(200);
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
    // The sliding second still holds the last test's admissions; 429s are wanted from this test's own.
    await expect.poll(async () => (await node.stats()).tenants.acme?.requestsPerSecond, { timeout: 5000 }).toBe(0);
    // The rate alone (slots to spare: with two, the twelve would queue for slots and reach the rate
    // a few at a time, each then admitted within its second): five admitted at once, five waiting
    // (the queue holds a second of the cap), two refused at once.
    await node.setState(state({ acme: { maxConnections: 1000, requestsPerSecond: 5 } }));
    const statuses = new Set(
      (await Promise.all(Array.from({ length: 12 }, () => get(node.port(ACME))))).map((r) => r.status),
    );
    expect(statuses).toEqual(new Set([200, 429]));
    const stats = await node.stats();
    expect(stats.tenants.acme?.active).toBe(0);
    expect(stats.vips[ACME]?.active).toBe(0);
    expect(stats.upstreams.t_acme_web?.active).toBe(0);
    expect(stats.peers['t_acme_web/m1']?.active).toBe(0);
  });

  it('queues a request over a cap, as HAProxy does: admitted once the cap allows it, refused after the wait (429 after a second, 503 after SLOT_QUEUE_MS)', async () => {
    const timed = async (path = '/') => {
      const at = performance.now();
      const reply = await get(node.port(ACME), path, SLOT_QUEUE_MS + 5000);
      return { status: reply.status, ms: performance.now() - at };
    };
    // The rate: ten admitted early in a second, the eleventh waits for the sliding second to make room.
    await node.setState(state({ acme: { maxConnections: 1000, requestsPerSecond: 10 } }));
    await expect.poll(async () => (await node.stats()).tenants.acme?.requestsPerSecond, { timeout: 5000 }).toBe(0);
    // 0.3 s into a wall-clock second (nginx's clock): the eleventh is due about 0.8 s later, within the queue's second.
    await new Promise((r) => setTimeout(r, (1300 - (Date.now() % 1000)) % 1000));
    const ten = await Promise.all(Array.from({ length: 10 }, () => timed()));
    expect(ten.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200));
    const eleventh = await timed();
    expect(eleventh.status, JSON.stringify(eleventh)).toBe(200);
    expect(eleventh.ms, JSON.stringify(eleventh)).toBeGreaterThan(300);
    // Thirty at once: at most a second's worth (ten) wait, the rest are refused at once.
    const flood = await Promise.all(Array.from({ length: 30 }, () => timed()));
    const refused = flood.filter((r) => r.status === 429);
    expect(refused.length, JSON.stringify(flood)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...flood.map((r) => r.ms)), JSON.stringify(flood)).toBeLessThan(3000);

    // The connections: one in flight, the next waits for its slot and is served when it frees.
    await node.setState(state({ acme: { maxConnections: 1, requestsPerSecond: 1000 } }));
    const slow = holding(node.port(ACME));
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(1);
    const waiting = timed();
    await new Promise((r) => setTimeout(r, 300));
    expect((await node.stats()).tenants.acme?.active).toBe(1);
    release();
    expect(await slow.done).toBe(200);
    const served = await waiting;
    expect(served.status, JSON.stringify(served)).toBe(200);
    expect(served.ms, JSON.stringify(served)).toBeGreaterThan(250);
    // No slot frees within the queue's time: 503 after the wait.
    const slow2 = holding(node.port(ACME));
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(1);
    const refusedAfter = await timed();
    expect(refusedAfter.status, JSON.stringify(refusedAfter)).toBe(503);
    expect(refusedAfter.ms, JSON.stringify(refusedAfter)).toBeGreaterThan(SLOT_QUEUE_MS - 100);
    expect(refusedAfter.ms, JSON.stringify(refusedAfter)).toBeLessThan(SLOT_QUEUE_MS + 2000);
    release();
    expect(await slow2.done).toBe(200);
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
  });

  it('hands each freed slot to a waiting request, first come first served across two workers, never letting more than the cap in flight', async () => {
    const CAP = 3;
    const TOTAL = 24;
    await node.setState(state({ acme: { maxConnections: CAP, requestsPerSecond: 1000 } }));
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
    const requests = Array.from({ length: TOTAL }, () => holding(node.port(ACME)));
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(CAP);
    let served = 0;
    while (served < TOTAL) {
      const wave = Math.min(CAP, TOTAL - served);
      // Each wave is held by the member until released: the member sees exactly what nginx let through.
      await expect.poll(() => held.length, { timeout: 3000 }).toBe(wave);
      await new Promise((r) => setTimeout(r, 50));
      expect(held.length).toBe(wave); // no one past the cap, whichever worker the slot was freed in
      release();
      served += wave;
    }
    expect(await Promise.all(requests.map((r) => r.done))).toEqual(Array.from({ length: TOTAL }, () => 200));
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
  });

  it('ends a request waiting for a slot when its client leaves: the member never sees it, and later requests do not queue behind it', async () => {
    await node.setState(state({ acme: { maxConnections: 1, requestsPerSecond: 1000 } }));
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
    const slow = holding(node.port(ACME));
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(1);
    const logged = async () => (await node.stats()).vips[ACME]?.requests ?? 0;
    const before = await logged();
    const abandoned = Array.from({ length: 20 }, () => holding(node.port(ACME)));
    await new Promise((r) => setTimeout(r, 300));
    for (const request of abandoned) request.abort();
    await Promise.all(abandoned.map((r) => r.done.catch(() => undefined)));
    // nginx ends each (499) as it notices its client left, and the log phase counts it.
    await expect.poll(logged, { timeout: 5000 }).toBeGreaterThanOrEqual(before + 20);
    release();
    expect(await slow.done).toBe(200);
    // Had the abandoned requests still waited, one would now hold the slot at the member.
    await new Promise((r) => setTimeout(r, 300));
    expect(held.length).toBe(0);
    const next = await get(node.port(ACME), '/', 3000);
    expect(next.status).toBe(200);
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
  });

  it('goes on handing slots to requests that wait in the workers a reload retires', async () => {
    await node.setState(state({ acme: { maxConnections: 1, requestsPerSecond: 1000 } }));
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
    const workers = node.workers();
    const requests = Array.from({ length: 6 }, () => holding(node.port(ACME)));
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 300)); // the other five are waiting, in either worker
    process.kill(node.pid, 'SIGHUP');
    await expect.poll(() => node.workers().filter((pid) => !workers.includes(pid)).length, { timeout: 10_000 }).toBe(2);
    // The old workers serve out what they hold: each slot freed goes to the next waiter, whichever
    // old worker it waits in, well before the 10-s queue time (the slot freed in the other worker
    // reaches it through that worker's timer, which must outlive the reload).
    const started = performance.now();
    for (let served = 1; served <= 6; served++) {
      await expect.poll(() => held.length, { timeout: 3000 }).toBe(1);
      release();
    }
    expect(await Promise.all(requests.map((r) => r.done))).toEqual(Array.from({ length: 6 }, () => 200));
    expect(performance.now() - started).toBeLessThan(6000);
    await expect.poll(async () => (await node.stats()).tenants.acme?.active, { timeout: 5000 }).toBe(0);
  });

  it('answers a request over the rate cap as HAProxy does: 429, Retry-After: 1 and a plain-text reason', async () => {
    await node.setState(
      state({
        acme: { maxConnections: 1000, requestsPerSecond: 1000 },
        globex: { maxConnections: 1000, requestsPerSecond: 1 },
      }),
    );
    const replies: { status: number; retryAfter?: string; type?: string; body: string }[] = [];
    for (let i = 0; i < 3; i++)
      replies.push(
        await new Promise((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: node.port(GLOBEX), path: '/', agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                retryAfter: res.headers['retry-after'],
                type: res.headers['content-type'],
                body,
              }),
            );
          });
          req.on('error', reject);
        }),
      );
    const refused = replies.filter((r) => r.status === 429);
    expect(refused.length, JSON.stringify(replies)).toBeGreaterThan(0);
    for (const r of refused)
      expect(r).toEqual({ status: 429, retryAfter: '1', type: 'text/plain', body: 'request rate cap reached' });
  });

  it('logs no errors', () => {
    expect(node.errors().join('\n')).toBe('');
  });
});
