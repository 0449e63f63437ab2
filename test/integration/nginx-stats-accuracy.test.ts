import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wrk } from '../../bench/support.js';
import type { Agent } from '../../src/fleet/agent/agent.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { converged, expectOk, memoryLogger, startFastAgent, startNginx, type ProxyProcess } from './agent-support.js';
import { eventually, freePort, httpMember, type Closable, untilVipAnswers } from './haproxy-render-support.js';

/**
 * Issue 15's acceptance for NGINX stats: what the stats API says a tenant's VIP served agrees with
 * what wrk sent through it within 10%. The whole path is real: the control plane (reconciler and
 * stats poller on, a poll every second), the NGINX node's rendered config with the Lua module,
 * its agent, nginx on loopback, and the poller reading the node through its mTLS runtime channel.
 * Only 127.0.0.0/8; every wait is bounded; only processes started here are stopped, by PID.
 */
const VIP = '127.0.0.97';
const MEMBER = '127.0.8.31';
const STEP_S = 10;
const WRK_S = 20;

describe('stats of an NGINX node against wrk', () => {
  let app: TestApp;
  let root: string;
  let vipPort: number;
  let agent: Agent | undefined;
  let nginx: ProxyProcess | undefined;
  let member: (Closable & { port: number }) | undefined;

  const points = async (from: number, to: number) => {
    const query = `from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&step=${STEP_S}`;
    const res = await expectOk(app, 'GET', `/v1/tenants/acc/stats?${query}`);
    expect(res.source).toBe('raw');
    return (res.vips.find((v: { vip: string }) => v.vip === 'www')?.points ?? []) as {
      at: string;
      requestRate: number;
      rate2xx: number;
      rate429: number;
    }[];
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'sy-ngx-stats-'));
    app = await startTestApp({
      SWITCHYARD_RECONCILE: 'true',
      SWITCHYARD_LEADER_RETRY_MS: '100',
      SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
      SWITCHYARD_STATS: 'true',
      SWITCHYARD_STATS_INTERVAL_S: '1',
      SWITCHYARD_STATS_NODE_TIMEOUT_MS: '800',
      SWITCHYARD_STATS_RAW_RETENTION_S: '600',
    });
    vipPort = await freePort(VIP);
    member = await httpMember('m1', MEMBER);
    // Caps far above what wrk reaches here (40,000 req/s): every request is served, none refused.
    await expectOk(app, 'POST', '/v1/tenants', {
      id: 'acc',
      proxyKind: 'nginx',
      reservation: { vcpu: 4, memoryMb: 4096 },
    });
    await expectOk(app, 'POST', '/v1/tenants/acc/pools', { name: 'web' });
    await expectOk(app, 'PUT', '/v1/tenants/acc/pools/web/members', {
      members: [{ name: 'm1', address: MEMBER, port: member.port }],
    });
    await expectOk(app, 'POST', '/v1/tenants/acc/vips', {
      name: 'www',
      address: VIP,
      port: vipPort,
      protocol: 'http',
      defaultPool: 'web',
    });
    const configDir = join(root, 'etc');
    const node = await expectOk(app, 'POST', '/v1/nodes', {
      name: 'ngx-acc',
      kind: 'nginx',
      capacity: { vcpu: 8, memoryMb: 8192 },
      configDir,
      socketDir: root,
      runtimeAddress: { host: '127.0.0.1', port: await freePort('127.0.0.1') },
    });
    agent = startFastAgent(
      app.url,
      { name: 'ngx-acc', kind: 'nginx', configDir, socket: join(root, 'master.sock'), token: node.agentToken },
      memoryLogger().logger,
    );
    await converged(app.admin, 'ngx-acc', 0, 30_000);
    nginx = startNginx(configDir);
    await untilVipAnswers(VIP, vipPort);
    // The poller reads the node through its channel: samples of the VIP come in.
    await eventually(
      'samples of the VIP from the NGINX node',
      async () => ((await points(Date.now() - 60_000, Date.now() + 1000)).length > 0 ? true : undefined),
      20_000,
      250,
    );
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await nginx?.stop();
    await member?.close();
    await app?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('when wrk sends keep-alive requests through the VIP, then the API counts what it sent within 10%', async () => {
    // A point is the mean of its bucket's rates: the bucket the run starts in must hold the idle
    // seconds before it too, or its mean is of the loaded seconds alone. So the node has been read
    // (with rates) every second for a whole bucket before wrk starts.
    await eventually(
      'a bucket of rated polls of the node',
      async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from stat_samples
          where node_name = 'ngx-acc' and kind = 'frontend' and request_rate is not null
            and at > now() - make_interval(secs => ${STEP_S + 1})`.execute(app.cp.database.db);
        return rows[0]!.n >= STEP_S ? true : undefined;
      },
      30_000,
      500,
    );
    const started = Date.now();
    const sent = await wrk(`http://${VIP}:${vipPort}/`, { seconds: WRK_S, connections: 8, threads: 1 });
    const ended = Date.now();
    expect(sent.requests).toBeGreaterThan(1000);
    expect(sent.non2xx).toBe(0);
    expect(sent.socketErrors).toBe(0);
    // Every bucket the run touched, once it is over and a poll after it is stored: each point is the
    // mean of ~10 one-second rates, so rate × step is the requests its bucket saw.
    const from = Math.floor(started / 1000 / STEP_S) * STEP_S * 1000 - STEP_S * 1000;
    const to = (Math.floor(ended / 1000 / STEP_S) + 1) * STEP_S * 1000;
    const series = await eventually(
      'the buckets of the run, complete',
      async () => {
        const p = await points(from, to + STEP_S * 1000);
        const last = p.at(-1);
        return Date.now() > to + 2000 && last !== undefined && Date.parse(last.at) >= to - STEP_S * 1000
          ? p
          : undefined;
      },
      STEP_S * 1000 + 20_000,
      500,
    );
    const inRun = series.filter((p) => Date.parse(p.at) < to);
    const counted = inRun.reduce((sum, p) => sum + p.requestRate * STEP_S, 0);
    const served = inRun.reduce((sum, p) => sum + p.rate2xx * STEP_S, 0);
    const seconds = (ended - started) / 1000;
    const report = `wrk sent ${sent.requests} (${Math.round(sent.requests / seconds)}/s); the API counted ${Math.round(counted)} (${Math.round(counted / seconds)}/s) in ${JSON.stringify(inRun)}`;
    expect(Math.abs(counted - sent.requests) / sent.requests, report).toBeLessThanOrEqual(0.1);
    expect(Math.abs(served - sent.requests) / sent.requests, report).toBeLessThanOrEqual(0.1);
    expect(inRun.every((p) => p.rate429 === 0)).toBe(true);
  }, 90_000);
});
