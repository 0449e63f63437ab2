import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wrk, type WrkResult } from '../../bench/support.js';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  A_CAPPED,
  A_LIFTED,
  FLOODS,
  capsOf,
  floodA,
  floodWhile,
  startNginxNoisyNode,
  victimScript,
  type NginxNoisyNode,
} from './nginx-noisy-support.js';
import { CONTROL_PLANE_ENV } from './noisy-support.js';

/**
 * The noisy neighbour on an NGINX node (issue 15), through the shipped path: the control plane
 * (stats poller every 2 s, rebalancer, reconciler pushing caps through the node's mTLS runtime
 * channel), the node's agent applying the rendered config, nginx running the Switchyard Lua
 * module. Tenant A floods its VIP with wrk; tenant B sends steady traffic to its own (wrk, 2
 * connections, a new connection per request, paced): what B gets is compared with B alone in the
 * same run. A is held at what it reserved, 500 req/s and 78 requests in flight; "no caps" is A
 * given everything B does not reserve, through the API.
 *
 * What is asserted is what the caps guarantee: A is served its cap (judged by what A gets, not by
 * what the node says), every request of B succeeds, a cap change applies to the next requests
 * with no reload, and with the caps lifted both floods serve A far past its caps. B's latency is bounded loosely here (250 ms at p99): A's requests over its caps
 * now wait (up to a second) rather than being refused at full speed, and B's p99 under either
 * capped flood was 2-25 ms in bench:noisy, but this is a loaded 2-core machine; the latency figures
 * against the issue's 1.5× are `npm run bench:noisy`'s (docs/benchmarks.md).
 */

const B_CONNECTIONS = 2;
const B_PACE_MS = 5;
const B_SECONDS = 4;
/** A's flood runs B_SECONDS plus a second of lead and a second after: never more than 15 s. */
const FLOOD_SECONDS = B_SECONDS + 2;
const LATENCY_BOUND_MS = 250;

let app: TestApp;
let node: NginxNoisyNode;
let dir: string;
let script: string;
let solo: WrkResult;

const measureB = () => wrk(node.urlB, { seconds: B_SECONDS, connections: B_CONNECTIONS, script });
const report = (what: Record<string, unknown>) => JSON.stringify({ soloP99Ms: solo.p99Ms, ...what });

function expectEveryRequestServed(b: WrkResult, context: string): void {
  expect(b.socketErrors, context).toBe(0);
  expect(b.non2xx, context).toBe(0);
  // Paced at 5 ms on 2 connections, B asks a few hundred times a second: well over 100 in 4 s even when slowed.
  expect(b.requests, context).toBeGreaterThan(100);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sy-ngx-noisy-test-'));
  script = victimScript(dir, B_PACE_MS);
  app = await startTestApp({ ...CONTROL_PLANE_ENV, SWITCHYARD_LEADER_RETRY_MS: '100' });
  node = await startNginxNoisyNode(app.cp, app.admin);
  await wrk(node.urlB, { seconds: 1, connections: B_CONNECTIONS, script }); // warm-up
  solo = await measureB();
  expectEveryRequestServed(solo, 'B alone');
}, 90_000);

afterAll(async () => {
  await node?.close();
  await app?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('noisy neighbour on an NGINX node', () => {
  it('when A floods its VIP at full speed under its caps, then A is served its request-rate cap and every request of B succeeds', async () => {
    const cap = capsOf(A_CAPPED).requestsPerSecond;
    const { a, during: b } = await floodWhile(node, 'rate', FLOOD_SECONDS, measureB);
    const context = report({ a, b });
    expectEveryRequestServed(b, context);
    expect(b.p99Ms, context).toBeLessThanOrEqual(LATENCY_BOUND_MS);
    // A asked for far more than its cap: its requests waited their turn (switchyard.caps queues up
    // to a second), 50 connections at 500 req/s about 100 ms each, and it was served its cap, never starved.
    expect(a.p50Ms, context).toBeGreaterThan((0.5 * 1000 * FLOODS.rate.connections) / cap);
    expect(Math.abs(a.servedPerS - cap) / cap, context).toBeLessThanOrEqual(0.15);
  }, 60_000);

  it('when A holds more connections open than the node has room for under its caps, then every request of B succeeds', async () => {
    const { maxConnections } = capsOf(A_CAPPED);
    const flood = FLOODS.connections;
    const { a, during: b } = await floodWhile(
      node,
      'connections',
      FLOOD_SECONDS + flood.holdS,
      measureB,
      1 + flood.holdS,
    );
    const context = report({ a, b });
    expectEveryRequestServed(b, context);
    expect(b.p99Ms, context).toBeLessThanOrEqual(LATENCY_BOUND_MS);
    // A's requests in flight fill its cap, each answered after the hold; the rest wait their turn
    // (up to caps.lua's SLOT_QUEUE_S, then 503), costing the node nothing while they wait.
    expect(a.servedPerS, context).toBeGreaterThan((0.5 * maxConnections) / flood.holdS);
    expect(a.servedPerS, context).toBeLessThanOrEqual((1.15 * maxConnections) / flood.holdS);
  }, 60_000);

  it("when A's cap is changed through the API, then the node applies it to A's next requests with no reload", async () => {
    const workers = await node.workers();
    expect(workers.length).toBeGreaterThan(0);
    const reloads = node.reloads();
    const halved = { ...A_CAPPED, vcpu: A_CAPPED.vcpu / 2 };
    const held = await node.setCapsOfA(halved);
    expect(held.requestsPerSecond).toBe(capsOf(halved).requestsPerSecond);
    await floodA(node, 'rate', 1); // primes the window: see floodWhile
    const a = await floodA(node, 'rate', 4);
    const context = JSON.stringify({ held, a });
    expect(Math.abs(a.servedPerS - held.requestsPerSecond) / held.requestsPerSecond, context).toBeLessThanOrEqual(0.15);
    expect(await node.workers()).toEqual(workers);
    expect(node.reloads()).toBe(reloads);
    await node.setCapsOfA(A_CAPPED);
  }, 60_000);

  it("when A's caps are lifted, then both floods serve A far past its caps (the limits above were the caps' doing), still with no reload", async () => {
    const workers = await node.workers();
    const reloads = node.reloads();
    await node.setCapsOfA(A_LIFTED);
    const rate = await floodWhile(node, 'rate', FLOOD_SECONDS, measureB);
    const rateContext = report({ a: rate.a, b: rate.during });
    // The same full-speed flood, now answered by A's member: the cap above was the caps' doing.
    expect(rate.a.servedPerS, rateContext).toBeGreaterThan(3 * capsOf(A_CAPPED).requestsPerSecond);
    const flood = FLOODS.connections;
    const held = await floodWhile(node, 'connections', FLOOD_SECONDS + flood.holdS, measureB, 1 + flood.holdS);
    const heldContext = report({ a: held.a, b: held.during });
    // Each held request takes 1 s: served per second is requests in flight. Capped, A held at most
    // its 78; lifted, it holds most of its 1,100. (B is not starved by this flood any more: the
    // workers' connections are sized to what the allocator hands out, so they outnumber every
    // tenant's caps together; bench:noisy reports B's latency either way.)
    expect(held.a.servedPerS, heldContext).toBeGreaterThan((5 * capsOf(A_CAPPED).maxConnections) / flood.holdS);
    expect(await node.workers()).toEqual(workers);
    expect(node.reloads()).toBe(reloads);
  }, 60_000);
});
