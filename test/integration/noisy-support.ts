import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Db } from '../../src/db/connect.js';
import { HAPROXY_CAPACITY_FACTORS, toResourceVector } from '../../src/domain/capacity.js';
import { HAPROXY_FILES } from '../../src/domain/config-files.js';
import { parseShowMap } from '../../src/fleet/replies/show-map.js';
import type { ControlPlane } from '../../src/main.js';
import { frontendName } from '../../src/render/haproxy-names.js';
import type { Caller } from '../support/app.js';
import { eventually, freePort, listen, request, runtimeCommand, type Closable } from './haproxy-render-support.js';
import { ProxyNode } from './proxy-node.js';

/**
 * Two tenants sharing one HAProxy node on loopback, for the noisy-neighbour test and
 * `npm run bench:noisy`: tenant A floods its VIP with connections its member holds open, tenant B
 * sends steady traffic to its own VIP. Each tenant has its own frontend, so what they share is the
 * HAProxy process: its global `maxconn`, rendered from the node's memory with the same factor the
 * allocator uses (10,000 connections per GB). Without caps A takes every slot of the process and
 * B's new connections wait in the kernel backlog; with Switchyard's caps A's frontend `maxconn`
 * always leaves B at least its reservation. Everything is bounded; only what this file started is
 * stopped.
 */

export const HOST = '127.0.0.1';

/** Seconds between stats polls: two rebalancer periods, so a change a poll sees is live before the next poll. */
export const POLL_S = 2;

/**
 * The control plane's jobs as in production, on short intervals: the reconciler pushes caps, the
 * stats poller reads the node every `pollS` seconds and a rebalance follows each poll. No agent
 * sends heartbeats here (the caller plays the agent): registration and 'applied' reports are the
 * node's signs of life.
 */
export function controlPlaneEnv(pollS: number): Readonly<Record<string, string>> {
  return Object.freeze({
    SWITCHYARD_RECONCILE: 'true',
    SWITCHYARD_RECONCILE_INTERVAL_MS: '2000',
    SWITCHYARD_RECONCILE_RETRY_MAX_MS: '500',
    SWITCHYARD_STATS: 'true',
    SWITCHYARD_STATS_INTERVAL_S: String(pollS),
    SWITCHYARD_STATS_NODE_TIMEOUT_MS: '1500',
    SWITCHYARD_REBALANCE: 'true',
    SWITCHYARD_HEARTBEAT_INTERVAL_S: '120',
  });
}

/** The noisy neighbour's: polls every POLL_S, and a rebalance at least every second besides. */
export const CONTROL_PLANE_ENV: Readonly<Record<string, string>> = Object.freeze({
  ...controlPlaneEnv(POLL_S),
  SWITCHYARD_REBALANCE_INTERVAL_S: '1',
});

/** 32 MB: 312 connections, which is also the node's global maxconn (above HAProxy's floor of 256). */
export const NODE_CAPACITY = { vcpu: 1, memoryMb: 32 } as const;

/**
 * A reserves next to nothing and may use the whole node; B reserves 136 connections and may use
 * the whole node too. Sized with the allocator's own rules (reservations, weighted shares of the
 * spare, 25% demand headroom, hysteresis of 32 connections) so that B's steady 156 clients always
 * fit its cap: above its reservation while A floods, at it again when B comes back.
 */
export const TENANT_A = {
  id: 'tenant-a',
  reservation: { vcpu: 0.1, memoryMb: 1 },
  limit: { vcpu: 1, memoryMb: 32 },
} as const;
export const TENANT_B = {
  id: 'tenant-b',
  reservation: { vcpu: 0.25, memoryMb: 14 },
  limit: { vcpu: 1, memoryMb: 32 },
} as const;

export const connectionsOf = (resources: { vcpu: number; memoryMb: number }): number =>
  toResourceVector(resources, HAPROXY_CAPACITY_FACTORS).connections;

const VIP = 'web';
export const FRONTEND_A = frontendName(TENANT_A.id, VIP);
const FRONTEND_B = frontendName(TENANT_B.id, VIP);

/** An HTTP member that answers 200 after `delayMs` (± `jitter`, a fraction, so answers do not come in waves). */
export async function slowMember(delayMs: number, jitter = 0): Promise<Closable & { port: number }> {
  const waiting = new Set<() => void>();
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') return void res.writeHead(200).end('ok');
    const answer = () => {
      clearTimeout(timer);
      waiting.delete(answer);
      if (!res.writableEnded) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    };
    const timer = setTimeout(answer, delayMs * (1 + jitter * (2 * Math.random() - 1)));
    waiting.add(answer);
    res.on('close', () => {
      clearTimeout(timer);
      waiting.delete(answer);
    });
  });
  server.keepAliveTimeout = 1000;
  const port = await listen(server, HOST);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const answer of [...waiting]) answer();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `count` clients, each on a connection of its own asking for a response the member holds; answered, it asks again. */
export interface Flood {
  /** Connections established (a connection waiting in HAProxy's backlog counts: the kernel accepted it). */
  connected(): number;
  /** Connections closed or reset before any answer: refused by a connection cap (or never accepted). */
  refused(): number;
  /** Stops asking again and closes every connection. */
  stop(): void;
}

export function flood(port: number, count: number): Flood {
  let running = true;
  let connected = 0;
  let refused = 0;
  const sockets = new Set<net.Socket>();
  const open = () => {
    if (!running) return;
    const socket = net.connect({ host: HOST, port });
    let up = false;
    let answered = false;
    sockets.add(socket);
    socket.on('connect', () => {
      up = true;
      connected++;
      socket.write(`GET /hold HTTP/1.1\r\nHost: flood\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', () => (answered = true));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      if (up) connected--;
      if (running && !answered) refused++;
      // A refused or reset connection is retried after a pause, not in a tight loop.
      if (running) setTimeout(open, up ? 0 : 100).unref();
    });
  };
  for (let i = 0; i < count; i++) open();
  return {
    connected: () => connected,
    refused: () => refused,
    stop: () => {
      running = false;
      for (const s of sockets) s.destroy();
    },
  };
}

/** Closed-loop clients, each sending one request at a time on a fresh connection, counting every answer. */
export interface Steady {
  readonly ok: number;
  readonly failed: number;
  /** The first few failures, for the assertion message. */
  readonly failures: readonly string[];
  /** Stops sending; resolves when the requests in flight have been answered (or failed). */
  stop(): Promise<void>;
}

export function steady(port: number, concurrency: number, timeoutMs: number): Steady {
  let running = true;
  const failures: string[] = [];
  const loop = async () => {
    while (running) {
      const why = await request({ host: HOST, port, path: '/steady' }, timeoutMs).then(
        (answer) => (answer.status >= 200 && answer.status < 300 ? null : `status ${answer.status}`),
        (err: Error) => err.message,
      );
      if (why === null) {
        state.ok++;
      } else {
        state.failed++;
        if (failures.length < 5) failures.push(why);
      }
    }
  };
  const state = {
    ok: 0,
    failed: 0,
    failures,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
  const loops = Array.from({ length: concurrency }, loop);
  return state;
}

/** What the proxy enforces and carries now, read back through the Runtime API. */
export interface Live {
  /**
   * Each tenant's connection cap (`cap`: its `<tenant>.conn` line in the caps map), its VIP's
   * frontend `maxconn` (`slim`: a static ceiling, the tenant's limit) and current sessions (`scur`).
   */
  readonly a: LiveTenant;
  readonly b: LiveTenant;
  /** The process's global maxconn and its current connections (`show info`). */
  readonly maxconn: number;
  readonly currConns: number;
}

export interface LiveTenant {
  readonly cap: number;
  readonly slim: number;
  readonly scur: number;
  /** Responses 2xx the frontend has sent since the worker started (`hrsp_2xx`). */
  readonly ok: number;
  /** Connections the frontend refused since the worker started (`dcon` + `dses`: the connection cap's rejects). */
  readonly refused: number;
}

export async function live(edge: ProxyNode): Promise<Live> {
  const [caps, rows, info] = await Promise.all([
    capsOnNode(edge, [TENANT_A.id, TENANT_B.id]),
    edge.stats(),
    runtimeCommand(edge.adminSocket, 'show info', 1000),
  ]);
  const tenant = (id: string, name: string): LiveTenant => {
    const row = rows.find((r) => r.pxname === name && r.svname === 'FRONTEND');
    if (row === undefined) throw new Error(`no frontend ${name} on ${edge.name}`);
    return {
      cap: caps[id]!.connections,
      slim: row.slim ?? 0,
      scur: row.scur ?? 0,
      ok: row.hrsp_2xx ?? 0,
      refused: (row.dcon ?? 0) + (row.dses ?? 0),
    };
  };
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(info)?.[1] ?? Number.NaN);
  return {
    a: tenant(TENANT_A.id, FRONTEND_A),
    b: tenant(TENANT_B.id, FRONTEND_B),
    maxconn: field('Maxconn'),
    currConns: field('CurrConns'),
  };
}

/** The node's caps map (relative to its configDir). */
const CAPS_MAP = HAPROXY_FILES.capsMap;

/** A tenant's caps as the proxy enforces them, and its current connections (all its frontends). */
export interface TenantCaps {
  /** Admitted requests per second: the tenant's line `<tenant> N` in the caps map. */
  readonly requestsPerSecond: number;
  /**
   * Concurrent connections: the map's line `<tenant>.conn N`; without one (the cap was each
   * frontend's `maxconn` before it moved into the map), the lowest `slim` of its frontends.
   */
  readonly connections: number;
  /** `scur` summed over the tenant's frontends. */
  readonly sessions: number;
}

/** Every tenant's caps on `edge`, read back through the Runtime API (`show map`, `show stat`). */
export async function capsOnNode(edge: ProxyNode, tenants: readonly string[]): Promise<Record<string, TenantCaps>> {
  const [map, rows] = await Promise.all([
    runtimeCommand(edge.adminSocket, `show map ${join(edge.dir, CAPS_MAP)}`, 1000),
    edge.stats(),
  ]);
  const entries = new Map(parseShowMap(map).map((e) => [e.key, Number(e.value)]));
  const out: Record<string, TenantCaps> = {};
  for (const tenant of tenants) {
    const frontends = rows.filter((r) => r.type === 'frontend' && r.pxname.startsWith(frontendName(tenant, '')));
    const rate = entries.get(tenant);
    if (rate === undefined || frontends.length === 0)
      throw new Error(`no caps of ${tenant} on ${edge.name}: ${map.slice(0, 200)}`);
    out[tenant] = {
      requestsPerSecond: rate,
      connections: entries.get(`${tenant}.conn`) ?? Math.min(...frontends.map((r) => r.slim ?? 0)),
      sessions: frontends.reduce((n, r) => n + (r.scur ?? 0), 0),
    };
  }
  return out;
}

/** Poll cycles the stats poller has completed (stored) for `node` since `since`: a clock counted in cycles. */
export async function pollsSince(db: Db, node: string, since: Date): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(distinct at)::int as n from stat_samples where node_name = ${node} and kind = 'frontend' and at > ${since}`.execute(
    db,
  );
  return rows[0]!.n;
}

/** Waits, bounded, until the stats poller (polling every `pollS`) has completed `n` more cycles for `node`. */
export async function pollCycles(db: Db, node: string, n: number, pollS = POLL_S): Promise<void> {
  const since = new Date();
  await eventually(
    `${n} poll cycles of ${node}`,
    async () => ((await pollsSince(db, node, since)) >= n ? true : undefined),
    (n + 3) * pollS * 1000,
    100,
  );
}

/**
 * Switchyard's caps off: the rebalancer and the reconciler stop (nothing puts a cap back), and
 * A gets the process's whole maxconn both as its connection cap in the caps map and as its
 * frontend's `maxconn` (its ceiling, the node less B's reservation, until now). HAProxy 2.6.12
 * must not raise a full frontend at runtime, and A's member holds its sessions, so the files are
 * edited and the node reloaded: the new worker starts with the caps lifted and slots of its own.
 */
export async function liftCaps(cp: ControlPlane, node: NoisyNode): Promise<void> {
  await cp.rebalancer?.stop();
  await cp.reconciler?.stop();
  const { maxconn } = await live(node.edge);
  const config = join(node.edge.dir, 'haproxy.cfg');
  const text = await readFile(config, 'utf8');
  const block = text.indexOf(`frontend ${FRONTEND_A}\n`);
  if (block < 0) throw new Error(`no frontend ${FRONTEND_A} in ${config}`);
  const end = text.indexOf('\n\n', block);
  await writeFile(
    config,
    text.slice(0, block) + text.slice(block, end).replace(/^(\s+maxconn) \d+$/m, `$1 ${maxconn}`) + text.slice(end),
  );
  const caps = join(node.edge.dir, CAPS_MAP);
  await writeFile(
    caps,
    (await readFile(caps, 'utf8')).replace(
      new RegExp(`^${TENANT_A.id}\\.conn \\d+$`, 'm'),
      `${TENANT_A.id}.conn ${maxconn}`,
    ),
  );
  await node.edge.reload();
  await eventually(
    "A's cap lifted",
    async () => {
      const { a } = await live(node.edge);
      return a.cap === maxconn && a.slim === maxconn ? true : undefined;
    },
    5000,
    20,
  );
}

/** The node, both tenants and their members, with the proxy running the config the control plane rendered. */
export interface NoisyNode extends Closable {
  readonly edge: ProxyNode;
  /** A's VIP; its member holds every request for `holdMs`. */
  readonly portA: number;
  /** B's VIP; its member answers after `delayMs`. */
  readonly portB: number;
}

/** An admin write that must succeed. */
export async function write(admin: Caller, method: string, path: string, body: unknown): Promise<void> {
  const res = await admin(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
}

/**
 * Registers the node first (placement refuses reservations no node has room for), then both
 * tenants, each with a pool of one member and an HTTP VIP on a loopback port; installs the node's
 * config as its agent would, starts HAProxy and waits until the rebalancer's caps are live on it.
 */
export async function startNoisyNode(
  admin: Caller,
  options: { holdMs: number; holdJitter?: number; delayMs: number },
): Promise<NoisyNode> {
  const edge = await ProxyNode.create('noisy-edge');
  const memberA = await slowMember(options.holdMs, options.holdJitter);
  const memberB = await slowMember(options.delayMs);
  const ports = { a: await freePort(HOST), b: await freePort(HOST) };
  try {
    await write(admin, 'POST', '/v1/nodes', { ...edge.registration(), capacity: NODE_CAPACITY });
    for (const [tenant, member, port] of [
      [TENANT_A, memberA, ports.a],
      [TENANT_B, memberB, ports.b],
    ] as const) {
      await write(admin, 'POST', '/v1/tenants', tenant);
      await write(admin, 'POST', `/v1/tenants/${tenant.id}/pools`, { name: VIP });
      await write(admin, 'PUT', `/v1/tenants/${tenant.id}/pools/${VIP}/members`, {
        members: [{ name: 'm1', address: HOST, port: member.port }],
      });
      // A's held requests must outlive the run, not be cut by the default 30 s timeouts.
      const timeouts = { clientMs: 600_000, serverMs: 600_000, connectMs: 5_000 };
      await write(admin, 'POST', `/v1/tenants/${tenant.id}/vips`, {
        name: VIP,
        address: HOST,
        port,
        protocol: 'http',
        defaultPool: VIP,
        timeouts,
      });
    }
    // A node whose push failed (its proxy was not running yet) keeps its caps until it is
    // reachable: install what it is served now, start it, then wait for the rebalancer's caps.
    await edge.install(admin);
    await edge.start();
    await eventually(
      "both tenants' caps stored and live on the proxy",
      async () => {
        const { items } = (await admin('GET', '/v1/allocations')).body as {
          items: { tenantId: string; maxConnections: number }[];
        };
        const caps = new Map(items.map((i) => [i.tenantId, i.maxConnections]));
        const now = await live(edge);
        return caps.get(TENANT_A.id) === now.a.cap && caps.get(TENANT_B.id) === now.b.cap ? true : undefined;
      },
      20_000,
    );
  } catch (err) {
    await Promise.all([edge.remove(), memberA.close(), memberB.close()]);
    throw err;
  }
  return {
    edge,
    portA: ports.a,
    portB: ports.b,
    close: async () => {
      await edge.remove();
      await Promise.all([memberA.close(), memberB.close()]);
    },
  };
}
