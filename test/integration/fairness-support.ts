import http from 'node:http';
import { sql } from 'kysely';
import type { Db } from '../../src/db/connect.js';
import { HAPROXY_CAPACITY_FACTORS, toResourceVector, type ResourceVector } from '../../src/domain/capacity.js';
import type { Caller } from '../support/app.js';
import { eventually, freePort, httpMember, request, type Closable } from './haproxy-render-support.js';
import { capsOnNode, controlPlaneEnv, pollCycles, slowMember, write, type TenantCaps } from './noisy-support.js';
import { ProxyNode } from './proxy-node.js';

/**
 * Fair shares under overload, on one real HAProxy node on loopback, for the fairness test and
 * `npm run bench:fairness`: two tenants with equal reservations and weights and limits as large
 * as the node. An open-loop paced load generator offers each tenant's HTTP VIP a request rate per
 * phase; a connection-demand client keeps N slow requests open against each tenant's TCP VIP.
 * Every figure is counted per wall-clock second and cut into windows at the stats poller's
 * stored poll times; the caps each tenant was entitled to are read back from the proxy.
 * Everything is bounded; only what this file started is stopped.
 */

export const HOST = '127.0.0.1';

/** Seconds between stats polls, as the issue measured. */
export const POLL_S = 5;

/** The control plane's jobs as in production, polling every POLL_S, each poll followed by a rebalance. */
export const FAIRNESS_ENV: Readonly<Record<string, string>> = controlPlaneEnv(POLL_S);

/** 400 req/s and 312 connections (the process's global maxconn too). */
export const FAIR_NODE = { vcpu: 0.04, memoryMb: 32 } as const;
/** 100 req/s and 78 connections reserved each; limits: the whole node. */
const RESERVATION = { vcpu: 0.01, memoryMb: 8 } as const;
export const TENANT_X = { id: 'tenant-x', reservation: RESERVATION, limit: FAIR_NODE } as const;
export const TENANT_Y = { id: 'tenant-y', reservation: RESERVATION, limit: FAIR_NODE } as const;
export const TENANTS = [TENANT_X.id, TENANT_Y.id] as const;

export const vectorOf = (resources: { vcpu: number; memoryMb: number }): ResourceVector =>
  toResourceVector(resources, HAPROXY_CAPACITY_FACTORS);
export const NODE_CAPACITY = vectorOf(FAIR_NODE);
export const RESERVED = vectorOf(RESERVATION);

/** The connection-demand clients' slow requests are held this long by their member (± HOLD_JITTER). */
export const HOLD_MS = 350;
const HOLD_JITTER = 0.43;

// ------------------------------------------------------------------------------------------ tallies

/** What was sent in one second (or over many), by outcome. */
export interface Tally {
  sent: number;
  ok: number;
  limited: number;
  other: number;
  errors: number;
  /** Sends skipped because the generator fell more than a second behind its schedule. */
  late: number;
  /** Milliseconds from send to the end of the answer, for every answered request. */
  readonly latencies: number[];
}

const emptyTally = (): Tally => ({ sent: 0, ok: 0, limited: 0, other: 0, errors: 0, late: 0, latencies: [] });

/** Seconds are whole Unix seconds, so windows cut at poll times line up with every counter. */
export const secondOf = (ms: number): number => Math.floor(ms / 1000);

function sumTallies(seconds: ReadonlyMap<number, Tally>, fromS: number, toS: number): Tally {
  const out = emptyTally();
  for (let s = fromS; s < toS; s++) {
    const t = seconds.get(s);
    if (t === undefined) continue;
    out.sent += t.sent;
    out.ok += t.ok;
    out.limited += t.limited;
    out.other += t.other;
    out.errors += t.errors;
    out.late += t.late;
    out.latencies.push(...t.latencies);
  }
  return out;
}

export function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ------------------------------------------------------------------------------------ paced load

export interface PacedLoad {
  /** Requests per second from now on (0: idle); the schedule restarts at the change. */
  setRate(rps: number): void;
  /** Everything sent in seconds [fromS, toS), by the second it was sent. */
  tally(fromS: number, toS: number): Tally;
  /** Stops sending; resolves when the requests in flight have ended. */
  stop(): Promise<void>;
}

/**
 * An open-loop load generator: requests go out on schedule (rate × elapsed), whatever the answers
 * do, over a pool of keep-alive sockets; a request waits for a socket only when all `sockets` are
 * busy, and at most `sockets` × 4 wait (beyond, the request counts as an error). Answers are
 * counted by the second the request was sent: 2xx, 429, other statuses, errors and timeouts.
 */
export function pacedLoad(
  port: number,
  options: { sockets?: number; timeoutMs?: number; path?: string } = {},
): PacedLoad {
  const sockets = options.sockets ?? 32;
  const timeoutMs = options.timeoutMs ?? 2000;
  // Idle sockets are closed well before HAProxy's 10-s keep-alive timeout would close them under a request.
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: sockets,
    maxFreeSockets: sockets,
    timeout: 4000,
    scheduling: 'fifo',
  });
  const seconds = new Map<number, Tally>();
  const bucket = (s: number) => {
    let t = seconds.get(s);
    if (t === undefined) seconds.set(s, (t = emptyTally()));
    return t;
  };
  let rate = 0;
  let origin = performance.now();
  let sent = 0;
  let inFlight = 0;
  let running = true;
  let drained: (() => void) | null = null;

  const fire = () => {
    const t = bucket(secondOf(Date.now()));
    t.sent++;
    if (inFlight >= sockets * 4) {
      t.errors++;
      return;
    }
    inFlight++;
    const started = performance.now();
    let settled = false;
    const settle = (outcome: 'ok' | 'limited' | 'other' | 'errors') => {
      if (settled) return;
      settled = true;
      t[outcome]++;
      if (outcome !== 'errors') t.latencies.push(performance.now() - started);
      if (--inFlight === 0 && drained !== null) drained();
    };
    const req = http.request({ host: HOST, port, path: options.path ?? '/', agent, timeout: timeoutMs }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => settle(status >= 200 && status < 300 ? 'ok' : status === 429 ? 'limited' : 'other'));
      res.on('error', () => settle('errors'));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => settle('errors'));
    req.end();
  };

  let timer: NodeJS.Timeout;
  const tick = () => {
    if (!running) return;
    const now = performance.now();
    let due = Math.floor(((now - origin) * rate) / 1000) - sent;
    if (due > rate) {
      // More than a second behind (the event loop stalled): those sends are skipped, and said so.
      bucket(secondOf(Date.now())).late += due - Math.ceil(rate / 10);
      sent += due - Math.ceil(rate / 10);
      due = Math.ceil(rate / 10);
    }
    for (let i = 0; i < due; i++) {
      sent++;
      fire();
    }
    timer = setTimeout(tick, 2);
  };
  tick();

  return {
    setRate(rps: number) {
      rate = rps;
      origin = performance.now();
      sent = 0;
    },
    tally: (fromS, toS) => sumTallies(seconds, fromS, toS),
    stop: async () => {
      running = false;
      clearTimeout(timer);
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      agent.destroy();
    },
  };
}

// ---------------------------------------------------------------------------- connection demand

export interface ConnectionTally {
  /** Slow requests answered 2xx (the connection was served). */
  served: number;
  /** Connections refused or reset before an answer (a refused client retries after 100 ms). */
  refused: number;
  /** Answers other than 2xx, and timeouts. */
  other: number;
  /** Most clients at once whose request had waited longer than the member ever holds one (in the kernel backlog). */
  waiting: number;
}

export interface ConnectionDemand {
  /** Clients from now on: more start at once; extra ones stop after their current request. */
  setClients(n: number): void;
  /** Counts in seconds [fromS, toS): sums, and the peak of `waiting`. */
  tally(fromS: number, toS: number): ConnectionTally;
  stop(): Promise<void>;
}

/**
 * `clients` concurrent clients, each trying to keep one connection with a slow request on it: the
 * member holds it, answers 200, and the client asks again on a fresh connection. Counted by the
 * second each request ended.
 */
export function connectionDemand(port: number, options: { timeoutMs?: number } = {}): ConnectionDemand {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const seconds = new Map<number, ConnectionTally>();
  const bucket = (s: number) => {
    let t = seconds.get(s);
    if (t === undefined) seconds.set(s, (t = { served: 0, refused: 0, other: 0, waiting: 0 }));
    return t;
  };
  let target = 0;
  const loops = new Map<number, Promise<void>>();
  /** When each client's current request was sent. */
  const outstanding = new Map<number, number>();

  const loop = async (index: number) => {
    while (index < target) {
      outstanding.set(index, Date.now());
      const outcome = await request({ host: HOST, port, path: '/hold' }, timeoutMs).then(
        (a) => (a.status >= 200 && a.status < 300 ? 'served' : 'other'),
        (err: Error) => (/timed out/.test(err.message) ? 'other' : 'refused'),
      );
      outstanding.delete(index);
      bucket(secondOf(Date.now()))[outcome]++;
      if (outcome === 'refused' && index < target) await new Promise((r) => setTimeout(r, 100));
    }
    loops.delete(index);
  };
  const waitingAfter = HOLD_MS * (1 + HOLD_JITTER) + 300;
  const sampler = setInterval(() => {
    const now = Date.now();
    let waiting = 0;
    for (const since of outstanding.values()) if (now - since > waitingAfter) waiting++;
    const t = bucket(secondOf(now));
    t.waiting = Math.max(t.waiting, waiting);
  }, 100);

  return {
    setClients(n: number) {
      target = n;
      for (let i = 0; i < n; i++) if (!loops.has(i)) loops.set(i, loop(i));
    },
    tally(fromS, toS) {
      const out: ConnectionTally = { served: 0, refused: 0, other: 0, waiting: 0 };
      for (let s = fromS; s < toS; s++) {
        const t = seconds.get(s);
        if (t === undefined) continue;
        out.served += t.served;
        out.refused += t.refused;
        out.other += t.other;
        out.waiting = Math.max(out.waiting, t.waiting);
      }
      return out;
    },
    stop: async () => {
      target = 0;
      await Promise.all(loops.values());
      clearInterval(sampler);
    },
  };
}

// ------------------------------------------------------------------------------------- the node

/** The node, both tenants and their members, with the proxy running the config the control plane rendered. */
export interface FairnessNode extends Closable {
  readonly edge: ProxyNode;
  /** Each tenant's HTTP VIP (a member answering at once) and TCP VIP (a member holding each request HOLD_MS ± 43%). */
  readonly ports: Readonly<Record<string, { readonly http: number; readonly tcp: number }>>;
}

/**
 * Registers the node, then X and Y, each with an HTTP VIP `web` on a fast member and a TCP VIP
 * `conn` on a slow one (TCP so that the connection scenario measures the connection cap alone: its
 * ~400 requests/s would otherwise meet the request-rate cap); installs the node's config as its
 * agent would, starts HAProxy, and waits until the stored caps are live on it.
 */
export async function startFairnessNode(admin: Caller): Promise<FairnessNode> {
  const edge = await ProxyNode.create('fair-edge');
  const members: (Closable & { port: number })[] = [];
  const ports: Record<string, { http: number; tcp: number }> = {};
  try {
    await write(admin, 'POST', '/v1/nodes', { ...edge.registration(), capacity: FAIR_NODE });
    for (const tenant of [TENANT_X, TENANT_Y]) {
      const fast = await httpMember(`${tenant.id}-fast`, HOST);
      const slow = await slowMember(HOLD_MS, HOLD_JITTER);
      members.push(fast, slow);
      ports[tenant.id] = { http: await freePort(HOST), tcp: await freePort(HOST) };
      await write(admin, 'POST', '/v1/tenants', tenant);
      for (const [pool, member] of [
        ['web', fast],
        ['hold', slow],
      ] as const) {
        await write(admin, 'POST', `/v1/tenants/${tenant.id}/pools`, { name: pool });
        await write(admin, 'PUT', `/v1/tenants/${tenant.id}/pools/${pool}/members`, {
          members: [{ name: 'm1', address: HOST, port: member.port }],
        });
      }
      await write(admin, 'POST', `/v1/tenants/${tenant.id}/vips`, {
        name: 'web',
        address: HOST,
        port: ports[tenant.id]!.http,
        protocol: 'http',
        defaultPool: 'web',
      });
      await write(admin, 'POST', `/v1/tenants/${tenant.id}/vips`, {
        name: 'conn',
        address: HOST,
        port: ports[tenant.id]!.tcp,
        protocol: 'tcp',
        defaultPool: 'hold',
      });
    }
    await edge.install(admin);
    await edge.start();
    await eventually(
      "both tenants' caps stored and live on the proxy",
      async () => {
        const { items } = (await admin('GET', '/v1/allocations')).body as {
          items: { tenantId: string; maxConnections: number; requestsPerSecond: number }[];
        };
        const caps = await capsOnNode(edge, TENANTS);
        return items.length === 2 &&
          items.every(
            (i) =>
              caps[i.tenantId]?.requestsPerSecond === i.requestsPerSecond &&
              caps[i.tenantId]?.connections === i.maxConnections,
          )
          ? true
          : undefined;
      },
      20_000,
    );
  } catch (err) {
    await Promise.all([edge.remove(), ...members.map((m) => m.close())]);
    throw err;
  }
  return {
    edge,
    ports,
    close: async () => {
      await edge.remove();
      await Promise.all(members.map((m) => m.close()));
    },
  };
}

// ----------------------------------------------------------------------------- caps and polls

export interface CapsReading {
  readonly at: number;
  readonly caps: Readonly<Record<string, TenantCaps>>;
}

export interface CapsWatch {
  readonly readings: readonly CapsReading[];
  latest(): CapsReading | undefined;
  stop(): Promise<void>;
}

/** Reads both tenants' caps (and sessions) back from the proxy every `everyMs` for as long as it runs. */
export function watchCaps(edge: ProxyNode, everyMs = 200): CapsWatch {
  const readings: CapsReading[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const caps = await capsOnNode(edge, TENANTS).catch(() => null);
      if (caps !== null) readings.push({ at: Date.now(), caps });
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    readings,
    latest: () => readings.at(-1),
    stop: async () => {
      running = false;
      await done;
    },
  };
}

type CapDimension = 'requestsPerSecond' | 'connections';

/** The cap a tenant held over [fromMs, toMs), time-weighted from the readings (each holds until the next; the last one before the window holds at its start). */
export function capDuring(
  readings: readonly CapsReading[],
  tenant: string,
  dim: CapDimension,
  fromMs: number,
  toMs: number,
): number | null {
  let weighted = 0;
  let covered = 0;
  for (let i = 0; i < readings.length; i++) {
    const start = Math.max(fromMs, readings[i]!.at);
    const end = Math.min(toMs, readings[i + 1]?.at ?? toMs);
    if (end <= start) continue;
    weighted += readings[i]!.caps[tenant]![dim] * (end - start);
    covered += end - start;
  }
  return covered === 0 ? null : weighted / covered;
}

/** The first reading at or after `fromMs` for which `holds` is true. */
export function firstReading(
  readings: readonly CapsReading[],
  fromMs: number,
  holds: (r: CapsReading) => boolean,
): CapsReading | undefined {
  return readings.find((r) => r.at >= fromMs && holds(r));
}

/** When the stats poller stored each poll of `node` after `since` (ms, ascending): a clock counted in polls. */
export async function pollTimes(db: Db, node: string, since: Date): Promise<number[]> {
  const { rows } = await sql<{ at: Date }>`
    select distinct at from stat_samples where node_name = ${node} and kind = 'frontend' and at > ${since} order by at`.execute(
    db,
  );
  return rows.map((r) => new Date(r.at).getTime());
}

/** Polls stored in (fromMs, toMs]. */
export const pollsBetween = (polls: readonly number[], fromMs: number, toMs: number): number =>
  polls.filter((p) => p > fromMs && p <= toMs).length;

// ------------------------------------------------------------------------------ the rate scenario

export interface PhaseSpec {
  readonly name: string;
  /** Offered req/s per tenant. */
  readonly rates: Readonly<Record<string, number>>;
  /** The phase lasts this many stored polls. */
  readonly polls: number;
}

/**
 * The phases (idle ~10 s, X at 2.5x its reservation ~20 s, both ~25 s, idle ~15 s), with
 * X alone once more before the end, so that the tenants go idle from uneven caps (X lent the
 * spare) and their return to an even split is measured, not given.
 */
export const RATE_PHASES: readonly PhaseSpec[] = [
  { name: 'idle', rates: { [TENANT_X.id]: 0, [TENANT_Y.id]: 0 }, polls: 2 },
  { name: 'x-busy', rates: { [TENANT_X.id]: 250, [TENANT_Y.id]: 0 }, polls: 4 },
  { name: 'both-busy', rates: { [TENANT_X.id]: 250, [TENANT_Y.id]: 250 }, polls: 5 },
  { name: 'x-again', rates: { [TENANT_X.id]: 250, [TENANT_Y.id]: 0 }, polls: 3 },
  { name: 'idle-again', rates: { [TENANT_X.id]: 0, [TENANT_Y.id]: 0 }, polls: 3 },
];

export interface PhaseRun {
  readonly spec: PhaseSpec;
  readonly start: number;
  readonly end: number;
}

/** Runs the phases back to back, each for its number of stored polls; returns when each began and ended. */
export async function runPhases(
  db: Db,
  node: string,
  phases: readonly PhaseSpec[],
  apply: (spec: PhaseSpec) => void,
  log: (msg: string) => void = () => undefined,
): Promise<PhaseRun[]> {
  const runs: PhaseRun[] = [];
  for (const spec of phases) {
    apply(spec);
    const start = Date.now();
    log(`phase ${spec.name}: ${JSON.stringify(spec.rates)} for ${spec.polls} polls`);
    await pollCycles(db, node, spec.polls, POLL_S);
    runs.push({ spec, start, end: Date.now() });
  }
  return runs;
}

/** One tenant in one window: what it was offered, served and refused (req/s), and the cap it held. */
export interface TenantWindow {
  readonly offered: number;
  readonly served: number;
  readonly limited: number;
  readonly other: number;
  readonly errors: number;
  /** Its rate cap on the proxy over the window (time-weighted). */
  readonly entitled: number;
  readonly p99Ms: number | null;
}

export interface RateWindow {
  readonly phase: string;
  /** Unix seconds [from, to). */
  readonly from: number;
  readonly to: number;
  /** Polls of the phase stored before the window began. */
  readonly afterPolls: number;
  readonly tenants: Readonly<Record<string, TenantWindow>>;
}

/**
 * Cuts each phase into whole windows of `lengthS` seconds, the first starting at the phase's
 * `fromPoll`-th stored poll (0: the phase's start), the last ending before the phase did.
 */
export function rateWindows(
  runs: readonly PhaseRun[],
  polls: readonly number[],
  loads: Readonly<Record<string, PacedLoad>>,
  readings: readonly CapsReading[],
  fromPoll: (phase: PhaseSpec) => number,
  lengthS = POLL_S,
): RateWindow[] {
  const out: RateWindow[] = [];
  for (const run of runs) {
    const inPhase = polls.filter((p) => p > run.start && p <= run.end);
    const k = fromPoll(run.spec);
    const anchor = k === 0 ? run.start : inPhase[k - 1];
    if (anchor === undefined) continue;
    // The anchor's own second: a poll lands tens of ms into it, its rebalance a moment later.
    for (let from = secondOf(anchor); from + lengthS <= secondOf(run.end); from += lengthS) {
      const tenants: Record<string, TenantWindow> = {};
      for (const [tenant, load] of Object.entries(loads)) {
        const t = load.tally(from, from + lengthS);
        tenants[tenant] = {
          offered: t.sent / lengthS,
          served: t.ok / lengthS,
          limited: t.limited / lengthS,
          other: t.other / lengthS,
          errors: t.errors / lengthS,
          entitled:
            capDuring(readings, tenant, 'requestsPerSecond', from * 1000, (from + lengthS) * 1000) ?? Number.NaN,
          p99Ms: percentile(t.latencies, 99),
        };
      }
      out.push({
        phase: run.spec.name,
        from,
        to: from + lengthS,
        afterPolls: pollsBetween(polls, run.start, from * 1000),
        tenants,
      });
    }
  }
  return out;
}

// ------------------------------------------------------------------------ the connection scenario

/** X's concurrent clients in the connection scenario: more than its reservation (78), under half the node (156). */
export const CONNECTION_CLIENTS = 150;
/** Y's: more than half the node, so that its cap must be lent past the idle split to serve them all. */
export const Y_CONNECTION_CLIENTS = 200;

/** A condition's first value within `timeoutMs`, or undefined (a bench reports a miss instead of throwing). */
async function until<T>(probe: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  return eventually('condition', async () => probe(), timeoutMs, 50).catch(() => undefined);
}

export interface ConnectionRun {
  /** When Y's clients started, and when its connection cap was first read above its clients (lent), with the polls between. */
  readonly yStart: number;
  readonly lent: { readonly at: number; readonly polls: number; readonly cap: number } | null;
  /** Y's clients over the last poll interval before X came, served and refused per second. */
  readonly yAlone: {
    readonly served: number;
    readonly refused: number;
    readonly other: number;
    readonly waiting: number;
    readonly cap: number;
  };
  readonly xStart: number;
  /** When X first held its reserved connections (sessions on its frontends). */
  readonly xReserved: { readonly at: number; readonly ms: number; readonly polls: number } | null;
  /** When both caps were first read within 10% of half the node. */
  readonly fair: {
    readonly at: number;
    readonly polls: number;
    readonly caps: Readonly<Record<string, number>>;
  } | null;
  /** Each tenant over the last poll interval of the run. */
  readonly both: Readonly<
    Record<
      string,
      {
        readonly served: number;
        readonly refused: number;
        readonly other: number;
        readonly waiting: number;
        readonly cap: number;
      }
    >
  >;
}

/**
 * Y alone with Y_CONNECTION_CLIENTS slow clients until its cap is lent past them (at most 6
 * polls) and two more polls; then X comes with CONNECTION_CLIENTS, until both caps are within 10%
 * of half the node (at most 6 polls) and two more polls. Polls are counted from stored samples.
 */
export async function runConnectionScenario(
  db: Db,
  fair: FairnessNode,
  watch: CapsWatch,
  log: (msg: string) => void = () => undefined,
): Promise<ConnectionRun> {
  const node = fair.edge.name;
  const since = new Date();
  const demand = Object.fromEntries(TENANTS.map((t) => [t, connectionDemand(fair.ports[t]!.tcp)])) as Record<
    string,
    ConnectionDemand
  >;
  const [x, y] = TENANTS;
  const perSecond = (t: ConnectionTally, seconds: number, cap: number) => ({
    served: t.served / seconds,
    refused: t.refused / seconds,
    other: t.other / seconds,
    waiting: t.waiting,
    cap,
  });
  const lastInterval = () => [secondOf(Date.now()) - POLL_S, secondOf(Date.now())] as const;
  try {
    log(`Y: ${Y_CONNECTION_CLIENTS} clients, X idle`);
    const yStart = Date.now();
    demand[y]!.setClients(Y_CONNECTION_CLIENTS);
    const lentReading = await until(
      () => firstReading(watch.readings, yStart, (r) => r.caps[y]!.connections >= Y_CONNECTION_CLIENTS),
      6 * POLL_S * 1000,
    );
    await pollCycles(db, node, 2, POLL_S);
    const [ya, yb] = lastInterval();
    const yAlone = perSecond(
      demand[y]!.tally(ya, yb),
      POLL_S,
      capDuring(watch.readings, y, 'connections', ya * 1000, yb * 1000) ?? Number.NaN,
    );

    log(`X: ${CONNECTION_CLIENTS} clients too`);
    const xStart = Date.now();
    demand[x]!.setClients(CONNECTION_CLIENTS);
    const reservedReading = await until(
      () => firstReading(watch.readings, xStart, (r) => r.caps[x]!.sessions >= RESERVED.connections),
      3 * POLL_S * 1000,
    );
    const half = NODE_CAPACITY.connections / 2;
    const within = (v: number) => Math.abs(v - half) <= 0.1 * half;
    const fairReading = await until(
      () =>
        firstReading(watch.readings, xStart, (r) => within(r.caps[x]!.connections) && within(r.caps[y]!.connections)),
      6 * POLL_S * 1000,
    );
    await pollCycles(db, node, 2, POLL_S);
    const [ba, bb] = lastInterval();
    const both = Object.fromEntries(
      TENANTS.map((t) => [
        t,
        perSecond(
          demand[t]!.tally(ba, bb),
          POLL_S,
          capDuring(watch.readings, t, 'connections', ba * 1000, bb * 1000) ?? Number.NaN,
        ),
      ]),
    );

    const polls = await pollTimes(db, node, since);
    return {
      yStart,
      lent:
        lentReading === undefined
          ? null
          : {
              at: lentReading.at,
              polls: pollsBetween(polls, yStart, lentReading.at),
              cap: lentReading.caps[y]!.connections,
            },
      yAlone,
      xStart,
      xReserved:
        reservedReading === undefined
          ? null
          : {
              at: reservedReading.at,
              ms: reservedReading.at - xStart,
              polls: pollsBetween(polls, xStart, reservedReading.at),
            },
      fair:
        fairReading === undefined
          ? null
          : {
              at: fairReading.at,
              polls: pollsBetween(polls, xStart, fairReading.at),
              caps: Object.fromEntries(TENANTS.map((t) => [t, fairReading.caps[t]!.connections])),
            },
      both,
    };
  } finally {
    await Promise.all(Object.values(demand).map((d) => d.stop()));
  }
}

// ------------------------------------------------------------------------------ the rate run

export interface RateRun {
  readonly runs: readonly PhaseRun[];
  readonly polls: readonly number[];
  /** Windows of POLL_S seconds from each phase's second stored poll. */
  readonly windows: readonly RateWindow[];
  /** Windows from each phase's first stored poll (for what must hold at once, such as a reservation). */
  readonly early: readonly RateWindow[];
  /** X busy alone: polls until its rate cap was read at or above what it offers. */
  readonly lend: { readonly polls: number; readonly cap: number } | null;
  /** Both busy: polls until Y was served its reservation within a second (95%). */
  readonly reclaim: { readonly polls: number; readonly served: number } | null;
  /** Both busy: polls until both rate caps were within 10% of half the node. */
  readonly fair: { readonly polls: number; readonly caps: Readonly<Record<string, number>> } | null;
  /** Idle again: polls until both tenants' caps were even (within one unit) in both dimensions. */
  readonly even: { readonly polls: number; readonly caps: Readonly<Record<string, TenantCaps>> } | null;
}

/** The phases against both HTTP VIPs, with the figures the test asserts and the bench prints. */
export async function runRateScenario(
  db: Db,
  fair: FairnessNode,
  watch: CapsWatch,
  log: (msg: string) => void = () => undefined,
): Promise<RateRun> {
  const node = fair.edge.name;
  const since = new Date();
  const loads = Object.fromEntries(TENANTS.map((t) => [t, pacedLoad(fair.ports[t]!.http)])) as Record<
    string,
    PacedLoad
  >;
  const [x, y] = TENANTS;
  try {
    const runs = await runPhases(
      db,
      node,
      RATE_PHASES,
      (spec) => {
        for (const t of TENANTS) loads[t]!.setRate(spec.rates[t] ?? 0);
      },
      log,
    );
    for (const t of TENANTS) loads[t]!.setRate(0);
    const polls = await pollTimes(db, node, since);
    const phase = (name: string) => runs.find((r) => r.spec.name === name)!;
    const readings = watch.readings;
    const xBusy = phase('x-busy');
    const both = phase('both-busy');
    const idle = phase('idle-again');
    const lent = firstReading(
      readings,
      xBusy.start,
      (r) => r.at <= xBusy.end && r.caps[x]!.requestsPerSecond >= xBusy.spec.rates[x]!,
    );
    let reclaim: RateRun['reclaim'] = null;
    for (let s = secondOf(both.start) + 1; s < secondOf(both.end); s++) {
      const served = loads[y]!.tally(s, s + 1).ok;
      if (served >= 0.95 * RESERVED.requestsPerSecond) {
        reclaim = { polls: pollsBetween(polls, both.start, (s + 1) * 1000), served };
        break;
      }
    }
    const half = NODE_CAPACITY.requestsPerSecond / 2;
    const within = (v: number) => Math.abs(v - half) <= 0.1 * half;
    const fairReading = firstReading(
      readings,
      both.start,
      (r) => r.at <= both.end && within(r.caps[x]!.requestsPerSecond) && within(r.caps[y]!.requestsPerSecond),
    );
    const evenReading = firstReading(
      readings,
      idle.start,
      (r) =>
        Math.abs(r.caps[x]!.requestsPerSecond - r.caps[y]!.requestsPerSecond) <= 1 &&
        Math.abs(r.caps[x]!.connections - r.caps[y]!.connections) <= 1,
    );
    return {
      runs,
      polls,
      windows: rateWindows(runs, polls, loads, readings, () => 2),
      early: rateWindows(runs, polls, loads, readings, () => 1),
      lend:
        lent === undefined
          ? null
          : { polls: pollsBetween(polls, xBusy.start, lent.at), cap: lent.caps[x]!.requestsPerSecond },
      reclaim,
      fair:
        fairReading === undefined
          ? null
          : {
              polls: pollsBetween(polls, both.start, fairReading.at),
              caps: Object.fromEntries(TENANTS.map((t) => [t, fairReading.caps[t]!.requestsPerSecond])),
            },
      even:
        evenReading === undefined
          ? null
          : { polls: pollsBetween(polls, idle.start, evenReading.at), caps: evenReading.caps },
    };
  } finally {
    await Promise.all(Object.values(loads).map((l) => l.stop()));
  }
}
