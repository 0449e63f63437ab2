import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX_CAPACITY_FACTORS, toResourceVector } from '../../src/domain/capacity.js';
import type { HeldState, NginxCaps } from '../../src/domain/nginx-runtime.js';
import type { Resources } from '../../src/domain/tenant.js';
import type { Agent } from '../../src/fleet/agent/agent.js';
import { DEFAULT_LUA_MODULES } from '../../src/render/nginx-view.js';
import type { ControlPlane } from '../../src/main.js';
import type { Caller } from '../support/app.js';
import { channelRequest, type ChannelClientTls } from '../support/nginx-lua-harness.js';
import { memoryLogger, nginxWorkers, startFastAgent, startNginx, type ProxyProcess } from './agent-support.js';
import { round, wrk, type WrkResult } from '../../bench/support.js';
import { eventually, freePort, request } from './haproxy-render-support.js';
import { write } from './noisy-support.js';

/**
 * Two tenants sharing one NGINX node on loopback, for the NGINX noisy-neighbour test and the NGINX
 * line of `npm run bench:noisy`. Everything is the shipped path: the control plane (reconciler,
 * stats poller and rebalancer on), the node's agent applying the config the control plane
 * rendered (the Switchyard Lua module, runtime-state.jsonl, the runtime channel's mTLS server
 * block), nginx on loopback, and caps pushed through the channel. Both tenants' members are one
 * small nginx of their own answering at once: a process apart, as real members are, so A's
 * answers do not share an event loop with the control plane or with B's member.
 *
 * On NGINX a tenant's caps are checked per request (switchyard.caps): a request over its
 * request-rate cap or its requests in flight waits up to a second for the cap to admit it, then is
 * answered 429 or 503, and never reaches a member. A's
 * reservation is also its limit, and the rebalancer never gives a tenant less than its
 * reservation or more than its limit, so A's caps are known numbers; changing them is one API
 * write that the rebalancer and the reconciler carry to the node with no reload. Only
 * 127.0.0.0/8; every wait is bounded; only processes started here are stopped, by their PIDs.
 */

const NODE = 'ngx-noisy';
/**
 * 40,000 req/s, more than nginx serves on this machine, so a lifted rate cap is no cap; 512 MB is
 * 5,000 requests in flight to the allocator, and the floor of 1,024 connections per worker in the
 * rendered config.
 */
export const NGINX_NODE_CAPACITY = { vcpu: 4, memoryMb: 512 } as const;
const VIP = { a: '127.0.0.81', b: '127.0.0.82' } as const;
const MEMBER_ADDRESS = '127.0.8.81';
const CHANNEL_HOST = '127.0.0.1';

export const NGINX_TENANT_A = 'noisy-a';
export const NGINX_TENANT_B = 'noisy-b';

/** A's caps while capped: its reservation and its limit, 500 req/s and 78 requests in flight. */
export const A_CAPPED = { vcpu: 0.05, memoryMb: 8 } as const;
/** "No caps": A may have everything B does not reserve, 35,000 req/s and 4,843 requests in flight. */
export const A_LIFTED = { vcpu: 3.5, memoryMb: 496 } as const;
/** B reserves 5,000 req/s and 156 requests in flight: far above its steady traffic, which never meets its own caps. */
const B_RESERVATION = { vcpu: 0.5, memoryMb: 16 } as const;

/** A tenant's caps on the node for these resources, as the allocator converts them. */
export const capsOf = (resources: Resources): NginxCaps => {
  const v = toResourceVector(resources, NGINX_CAPACITY_FACTORS);
  return { maxConnections: v.connections, requestsPerSecond: v.requestsPerSecond };
};

export interface NginxNoisyNode {
  /** The node's own temporary directory (removed by close()): config, members, scripts. */
  readonly dir: string;
  /** `http://<vip>:<port>/` of each tenant's VIP. */
  readonly urlA: string;
  readonly urlB: string;
  /** The node's nginx master (started here); its workers are what a reload would replace. */
  readonly nginx: ProxyProcess;
  workers(): Promise<number[]>;
  /** Times the node's agent reloaded nginx ('applied and reloaded' in its log). */
  reloads(): number;
  /**
   * A's caps as the node holds them, once its held entry is the one the control plane rendered
   * for A (same hash, read through the channel); undefined while the node holds anything else.
   */
  capsOfA(): Promise<NginxCaps | undefined>;
  /**
   * Gives A these resources as both its reservation and its limit, through the API, and waits
   * until the node holds the caps they convert to (a reservation applies at the next rebalance,
   * where a raised limit alone would be reached by doubling poll by poll). Answers those caps.
   */
  setCapsOfA(resources: Resources): Promise<NginxCaps>;
  close(): Promise<void>;
}

/** Both tenants' members: one nginx answering 200 at once, with a directory of its own. */
async function startMembers(root: string): Promise<{ port: number; process: ProxyProcess }> {
  const dir = join(root, 'members');
  mkdirSync(dir);
  const port = await freePort(MEMBER_ADDRESS);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`);
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      ...DEFAULT_LUA_MODULES.map((m) => `load_module ${m};`),
      'worker_processes 1;',
      'worker_rlimit_nofile 16384;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events { worker_connections 8192; }',
      'http {',
      '  access_log off;',
      ...temp,
      '  keepalive_requests 100000;',
      '  init_by_lua_block { require "resty.core" }',
      `  server {`,
      `    listen ${MEMBER_ADDRESS}:${port};`,
      '    location / { return 200 "ok\\n"; }',
      // Held: answered after ?s= seconds (a timer in the worker: holding costs nothing).
      '    location /hold { content_by_lua_block { ngx.sleep(tonumber(ngx.var.arg_s) or 1) ngx.say("ok") } }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const proxy = startNginx(dir);
  try {
    await eventually(
      'the members answering',
      async () =>
        (await request({ host: MEMBER_ADDRESS, port }).catch(() => null))?.status === 200 ? true : undefined,
      10_000,
      50,
    );
  } catch (err) {
    await proxy.stop();
    throw new Error(`${(err as Error).message}; nginx said: ${proxy.output()}`);
  }
  return { port, process: proxy };
}

/**
 * Registers the NGINX node (with a runtime channel), both tenants (NGINX tenants, an HTTP VIP each
 * on a loopback address, one pool with the shared member), starts the node's agent and, once it
 * has applied the rendered config, nginx; waits until both VIPs answer and A's caps are live.
 */
export async function startNginxNoisyNode(cp: ControlPlane, admin: Caller): Promise<NginxNoisyNode> {
  const root = mkdtempSync(join(tmpdir(), 'sy-ngx-noisy-'));
  const configDir = join(root, 'etc');
  const log = memoryLogger();
  let members: { port: number; process: ProxyProcess } | undefined;
  let agent: Agent | undefined;
  let nginx: ProxyProcess | undefined;
  const close = async () => {
    await agent?.stop();
    await nginx?.stop();
    await members?.process.stop();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    members = await startMembers(root);
    const ports = { a: await freePort(VIP.a), b: await freePort(VIP.b) };
    const channel = { host: CHANNEL_HOST, port: await freePort(CHANNEL_HOST) };
    const created = await admin('POST', '/v1/nodes', {
      name: NODE,
      kind: 'nginx',
      capacity: NGINX_NODE_CAPACITY,
      configDir,
      socketDir: root,
      runtimeAddress: channel,
    });
    if (created.status !== 201) throw new Error(`POST /v1/nodes: ${created.status} ${JSON.stringify(created.body)}`);
    const tenants = [
      [NGINX_TENANT_A, A_CAPPED, ports.a, VIP.a],
      [NGINX_TENANT_B, B_RESERVATION, ports.b, VIP.b],
    ] as const;
    for (const [id, reservation, port, address] of tenants) {
      await write(admin, 'POST', '/v1/tenants', { id, proxyKind: 'nginx', reservation });
      await write(admin, 'POST', `/v1/tenants/${id}/pools`, { name: 'web' });
      await write(admin, 'PUT', `/v1/tenants/${id}/pools/web/members`, {
        members: [{ name: 'm1', address: MEMBER_ADDRESS, port: members.port }],
      });
      await write(admin, 'POST', `/v1/tenants/${id}/vips`, {
        name: 'www',
        address,
        port,
        protocol: 'http',
        defaultPool: 'web',
      });
    }
    agent = startFastAgent(
      cp.url,
      {
        name: NODE,
        kind: 'nginx',
        configDir,
        socket: join(root, 'master.sock'),
        token: created.body.agentToken as string,
      },
      log.logger,
    );
    await eventually(
      'the agent to apply the rendered config',
      async () => {
        const config = (await admin('GET', `/v1/nodes/${NODE}/config`)).body;
        const status = (await admin('GET', `/v1/nodes/${NODE}`)).body;
        return status.status?.appliedHash === config.contentHash ? true : undefined;
      },
      30_000,
    );
    nginx = startNginx(configDir);
    const running = nginx;
    const urlA = `http://${VIP.a}:${ports.a}/`;
    const urlB = `http://${VIP.b}:${ports.b}/`;
    for (const [address, port] of [
      [VIP.a, ports.a],
      [VIP.b, ports.b],
    ] as const)
      await eventually(
        `${address}:${port} answering 200`,
        async () => ((await request({ host: address, port }).catch(() => null))?.status === 200 ? true : undefined),
        15_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; nginx said: ${running.output()}`);
      });
    const credentials = await cp.services.pki.clientCredentials();
    if (credentials === null) throw new Error('the control plane has no client certificate for the runtime channel');
    const tls: ChannelClientTls = {
      ca: credentials.caBundlePem,
      cert: credentials.certificatePem,
      key: credentials.keyPem,
    };
    const capsOfA = () => heldCaps(admin, channel, tls, NGINX_TENANT_A);
    const waitForCapsOfA = (want: NginxCaps) =>
      eventually(
        `A's caps ${JSON.stringify(want)} held by the node`,
        async () => {
          const caps = await capsOfA();
          return caps?.requestsPerSecond === want.requestsPerSecond && caps.maxConnections === want.maxConnections
            ? caps
            : undefined;
        },
        20_000,
        100,
      );
    const node: NginxNoisyNode = {
      dir: root,
      urlA,
      urlB,
      nginx: running,
      workers: () => nginxWorkers(running.pid),
      reloads: () => log.lines().filter((l) => l.msg === 'applied and reloaded').length,
      capsOfA,
      setCapsOfA: async (resources) => {
        await write(admin, 'PATCH', `/v1/tenants/${NGINX_TENANT_A}`, { reservation: resources, limit: resources });
        return waitForCapsOfA(capsOf(resources));
      },
      close,
    };
    await waitForCapsOfA(capsOf(A_CAPPED));
    return node;
  } catch (err) {
    await close();
    throw err;
  }
}

/** The tenant's caps entry the node's rendered runtime-state.jsonl carries, if the node holds that very entry. */
async function heldCaps(
  admin: Caller,
  channel: { host: string; port: number },
  tls: ChannelClientTls,
  tenant: string,
): Promise<NginxCaps | undefined> {
  const [config, held] = await Promise.all([
    admin('GET', `/v1/nodes/${NODE}/config`),
    channelRequest(channel, tls, 'GET', '/switchyard/v1/state', undefined, 2000).catch(() => null),
  ]);
  if (held?.status !== 200) return undefined;
  const file = String(config.body.files['runtime-state.jsonl'] ?? '');
  for (const line of file.split('\n').slice(1)) {
    if (line === '') continue;
    const entry = JSON.parse(line) as { caps?: string; hash: string; value: NginxCaps };
    if (entry.caps === tenant)
      return (held.body as HeldState).caps[tenant]?.hash === entry.hash ? entry.value : undefined;
  }
  return undefined;
}

/**
 * How A floods, each a wrk of its own (one thread, asking again the moment it is answered):
 * `rate`, 50 keep-alive connections whose requests the member answers at once, as many requests
 * as the node answers, where A's request-rate cap binds; `connections`, 1,100 connections whose
 * requests the member holds for 1 s (under wrk's 2-s timeout), each request on a new connection (as bench:noisy's HAProxy
 * flood), where A's connection cap (requests in flight) binds. Held, 1,100 requests are 2,200
 * sockets, more than the node's two workers have room for (1,024 each, rendered from its memory);
 * capped at 78 in flight they are 1,178.
 */
export const FLOODS = {
  rate: { path: '', connections: 50, holdS: 0, close: false },
  connections: { path: 'hold?s=1', connections: 1100, holdS: 1, close: true },
} as const;
export type FloodShape = keyof typeof FLOODS;

/** What A's flood got, from its wrk: answers a second that reached its member (2xx), and refusals a second (429 and 503). */
export interface Flooded extends WrkResult {
  readonly servedPerS: number;
  readonly refusedPerS: number;
}

export function flooded(result: WrkResult): Flooded {
  const perRequest = result.requests > 0 ? result.requestsPerSec / result.requests : 0;
  return {
    ...result,
    servedPerS: round((result.requests - result.non2xx) * perRequest, 1),
    refusedPerS: round(result.non2xx * perRequest, 1),
  };
}

/** A's flood of that shape for `seconds`, from a wrk of its own. */
export async function floodA(node: NginxNoisyNode, shape: FloodShape, seconds: number): Promise<Flooded> {
  const flood = FLOODS[shape];
  const script = flood.close ? closingScript(node.dir) : undefined;
  return flooded(await wrk(`${node.urlA}${flood.path}`, { seconds, connections: flood.connections, script }));
}

/**
 * Runs A's flood of the given shape for `seconds` and, `leadS` into it (its connections up and
 * its member holding), `during()`: B's measurement, which must end before the flood does. A rate
 * flood is primed with a second of the same flood first: the rate cap lets one second's worth
 * through at once after a quiet second, and a flood starting from quiet would count that burst.
 */
export async function floodWhile<T>(
  node: NginxNoisyNode,
  shape: FloodShape,
  seconds: number,
  during: () => Promise<T>,
  leadS = 1,
): Promise<{ a: Flooded; during: T }> {
  if (FLOODS[shape].holdS === 0) await floodA(node, shape, 1);
  const a = floodA(node, shape, seconds);
  // A flood that cannot start fails this call, not an unobserved promise.
  a.catch(() => undefined);
  await new Promise((r) => setTimeout(r, leadS * 1000));
  const measured = await during();
  return { a: await a, during: measured };
}

/** A wrk script that asks for a new connection per request. */
function closingScript(dir: string): string {
  const script = join(dir, 'close.lua');
  writeFileSync(script, 'wrk.headers["Connection"] = "close"\n');
  return script;
}

/** B's wrk script: a new connection per request, paced (`paceMs` between two of a connection's requests). */
export function victimScript(dir: string, paceMs: number): string {
  const script = join(dir, 'victim.lua');
  writeFileSync(script, `wrk.headers["Connection"] = "close"\nfunction delay()\n  return ${paceMs}\nend\n`);
  return script;
}
