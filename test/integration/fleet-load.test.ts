import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wrk } from '../../bench/support.js';
import { parseAgentOptions } from '../../src/cli/agent.js';
import { buildAgent } from '../../src/cli/build-agent.js';
import type { Agent } from '../../src/fleet/agent/agent.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { converged, expectOk, masterCli, memoryLogger, startHaproxy, type ProxyProcess } from './agent-support.js';
import {
  eventually,
  freePort,
  httpMember,
  runtimeCommand,
  type Closable,
  untilVipAnswers,
} from './haproxy-render-support.js';

/**
 * Hitless under load: wrk (keep-alive, 50 connections, 10 s) through one HAProxy node while 100
 * runtime changes and 5 structural changes (each a reload) are applied. Asserted by counts, not
 * timing: no non-2xx answer and no socket error. Loopback only; wrk stops by itself after 10 s.
 */
const VIP = '127.0.0.91';
const MEMBERS = ['127.0.7.11', '127.0.7.12', '127.0.7.13'];

let app: TestApp;
let root: string;
let vipPort: number;
let statsPort: number;
let agent: Agent | undefined;
let haproxy: ProxyProcess | undefined;
const backends: (Closable & { port: number })[] = [];
const socket = () => join(root, 'master.sock');

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sy-load-'));
  app = await startTestApp({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_LEADER_RETRY_MS: '100',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
  });
  vipPort = await freePort(VIP);
  statsPort = await freePort('127.0.0.1');
  for (const [i, address] of MEMBERS.entries()) backends.push(await httpMember(`m${i + 1}`, address));
  await expectOk(app, 'POST', '/v1/tenants', { id: 'load', reservation: { vcpu: 4, memoryMb: 8192 } });
  await expectOk(app, 'POST', '/v1/tenants/load/pools', {
    name: 'web',
    healthCheck: { type: 'http', path: '/healthz', intervalMs: 500, timeoutMs: 300 },
  });
  await expectOk(app, 'PUT', '/v1/tenants/load/pools/web/members', {
    members: backends.map((b, i) => ({ name: `m${i + 1}`, address: MEMBERS[i], port: b.port })),
  });
  await expectOk(app, 'POST', '/v1/tenants/load/vips', {
    name: 'www',
    address: VIP,
    port: vipPort,
    protocol: 'http',
    defaultPool: 'web',
  });
  const node = await expectOk(app, 'POST', '/v1/nodes', {
    name: 'edge-load',
    kind: 'haproxy',
    capacity: { vcpu: 4, memoryMb: 8192 },
    configDir: join(root, 'etc'),
    socketDir: root,
    runtimeAddress: { host: '127.0.0.1', port: statsPort },
  });
  agent = buildAgent(
    parseAgentOptions(
      {
        controlPlane: app.url,
        node: 'edge-load',
        kind: 'haproxy',
        configDir: join(root, 'etc'),
        masterSocket: socket(),
        haproxyBin: 'haproxy',
        nginxBin: 'nginx',
        wait: '2',
        heartbeat: '1',
        reloadTimeout: '10',
        keepReleases: '3',
      },
      { SWITCHYARD_AGENT_TOKEN: node.agentToken },
    ),
    memoryLogger().logger,
    { retry: { initialMs: 100, maxMs: 500, factor: 2 }, slowRetryMs: 500 },
  );
  void agent.run();
  await converged(app.admin, 'edge-load', 0, 30_000);
  haproxy = startHaproxy(join(root, 'etc'), socket());
  await untilVipAnswers(VIP, vipPort);
  // The node may still be catching up (a config built while HAProxy was not yet running is
  // applied with a reload, during which the master socket refuses connections): the test counts
  // reloads from a settled node.
  const current = (await app.admin('GET', '/v1/plan')).body.revision as number;
  await converged(app.admin, 'edge-load', current, 30_000);
  await eventually(
    'the master CLI answers',
    async () =>
      (await masterCli(socket())
        .showProc()
        .catch(() => null))
        ? true
        : undefined,
    15_000,
  );
}, 90_000);

afterAll(async () => {
  await agent?.stop();
  await haproxy?.stop();
  for (const b of backends) await b.close();
  await app?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('under load', () => {
  it('100 runtime and 5 structural changes during 10 s of wrk: no non-2xx, no socket error', async () => {
    const reloadsBefore = (await masterCli(socket()).showProc()).master.reloads;
    const load = wrk(`http://${VIP}:${vipPort}/`, { seconds: 10, connections: 50, threads: 2 });
    const changes = (async () => {
      await new Promise((r) => setTimeout(r, 500));
      for (let i = 0; i < 100; i++) {
        // Weights move between the members; at least one always carries traffic.
        await expectOk(app, 'PATCH', `/v1/tenants/load/pools/web/members/m${(i % 3) + 1}`, {
          weight: 1 + ((i * 37) % 200),
        });
        if (i % 20 === 10) {
          await expectOk(app, 'PATCH', '/v1/tenants/load/pools/web', {
            healthCheck: { type: 'http', path: '/healthz', intervalMs: 500 + (i + 1) * 10, timeoutMs: 300 },
          });
        }
        await new Promise((r) => setTimeout(r, 60));
      }
    })();
    const [result] = await Promise.all([load, changes]);
    expect(result.requests).toBeGreaterThan(1000);
    expect(result.non2xx).toBe(0);
    expect(result.socketErrors).toBe(0);
    // The changes really happened: the node runs the last structural change (bursts may share a
    // reload: that is the coalescing the agent does), and the last weights are live.
    const last = (await app.admin('GET', '/v1/tenants/load/pools/web')).body.revision;
    await converged(app.admin, 'edge-load', last, 30_000);
    const reloads = (await masterCli(socket()).showProc()).master.reloads - reloadsBefore;
    expect(reloads).toBeGreaterThanOrEqual(1);
    expect(reloads).toBeLessThanOrEqual(5);
    // A reload can land after the last pushes and bring up a worker with older weights; the agent's
    // report of it wakes the reconciler, which pushes them again: the node ends on the last weights.
    const expected: Record<string, number> = {};
    for (let i = 0; i < 100; i++) expected[`m${(i % 3) + 1}`] = 1 + ((i * 37) % 200);
    await eventually(
      'the last weights live',
      async () => {
        const state = await runtimeCommand(join(root, 'admin.sock'), 'show servers state be_load_web', 2000);
        const weights = Object.fromEntries(
          state
            .split('\n')
            .filter((l) => / be_load_web /.test(l))
            .map((l) => [l.split(' ')[3], Number(l.split(' ')[7])]),
        );
        return JSON.stringify(weights) === JSON.stringify(expected) ? true : undefined;
      },
      8_000,
      100,
    );
  }, 60_000);
});
