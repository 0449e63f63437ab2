import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { eventually, request, runtimeCommand } from './haproxy-render-support.js';
import { capTableName } from '../../src/render/haproxy-names.js';
import {
  CONTROL_PLANE_ENV,
  HOST,
  POLL_S,
  NODE_CAPACITY,
  TENANT_A,
  TENANT_B,
  connectionsOf,
  flood,
  liftCaps,
  live,
  pollCycles,
  pollsSince as noisyPolls,
  startNoisyNode,
  steady,
  type Flood,
  type Live,
  type NoisyNode,
  type Steady,
} from './noisy-support.js';

/**
 * The noisy neighbour, against a real HAProxy 2.6 on loopback: tenants A and B each have a VIP on
 * the same node (312 connections, the process's global maxconn; B reserves 136 of them). A opens
 * 400 connections its member holds open; B runs 156 closed-loop clients whose member answers after
 * a second, each request on a connection of its own. The control plane runs as in production
 * (stats poller every 2 s, rebalancer every 1 s, reconciler pushing caps through the Runtime API;
 * the test plays the agent). Everything asserted is read back from HAProxy (`show stat`, `show
 * info`) or counted (B's answers, completed poll cycles), never timed.
 *
 * The stats poller runs every two rebalancer periods, so a change the poller sees reaches the
 * proxy before its next cycle: "within two poll cycles" then states what the pipeline does, not
 * which of two 1-second timers fires first. A tenant's connection cap is its `<tenant>.conn` line
 * in the node's caps map (a connection beyond it is refused at accept); each frontend's `maxconn`
 * is the tenant's ceiling, the node less the other tenant's reservation (past it, connections wait
 * in the backlog instead of being refused). So A's cap rises while A is full with `set map`,
 * without the reload a runtime `set maxconn frontend` on a full frontend needed (HAProxy 2.6.12
 * aborts on it). The test still plays the node's agent (fetch the config, reload when its
 * structural hash moved), to see that no reload is asked for.
 */

const A_CLIENTS = 400;
const B_CLIENTS = 156;
const B_TIMEOUT_MS = 10_000;

const CAPACITY = connectionsOf(NODE_CAPACITY);
const B_RESERVED = connectionsOf(TENANT_B.reservation);

let app: TestApp;
let node: NoisyNode;
let noisy: Flood | null = null;
let b: Steady | null = null;
let watch: Watch | null = null;

const pollsSince = (since: Date) => noisyPolls(app.cp.database.db, node.edge.name, since);
const cycles = (n: number) => pollCycles(app.cp.database.db, node.edge.name, n);

/** The guarantee, checked on every reading: A's cap leaves B its reservation of the process's connections. */
function broken(l: Live): string | null {
  if (l.b.cap < B_RESERVED) return `B's cap ${l.b.cap} is under its reservation ${B_RESERVED}`;
  if (l.a.cap > CAPACITY - B_RESERVED) return `A's cap ${l.a.cap} reaches into B's reservation (node ${CAPACITY})`;
  if (l.a.cap + l.b.cap > l.maxconn) return `caps ${l.a.cap} + ${l.b.cap} exceed the process's maxconn ${l.maxconn}`;
  return null;
}

interface Watch {
  readonly readings: number;
  readonly violations: readonly string[];
  /** The highest connection cap A was read with. */
  readonly aCapMax: number;
  stop(): Promise<void>;
}

/** The connections A's table counts as let in (`conn_cur`): what its connection cap is compared with. */
async function admittedToA(): Promise<number> {
  const table = await runtimeCommand(node.edge.adminSocket, `show table ${capTableName(TENANT_A.id)}`, 1000);
  const match = /conn_cur=(\d+)/.exec(table);
  if (match === null) throw new Error(`no conn_cur in A's table: ${table}`);
  return Number(match[1]);
}

/** Reads both frontends back every 100 ms for as long as the scenario runs, keeping every broken reading. */
function watchCaps(): Watch {
  let running = true;
  let done: Promise<void> = Promise.resolve();
  const watch = {
    readings: 0,
    violations: [] as string[],
    aCapMax: 0,
    stop: async () => {
      running = false;
      await done;
    },
  };
  done = (async () => {
    while (running) {
      const l = await live(node.edge).catch(() => null);
      if (l !== null) {
        watch.readings++;
        watch.aCapMax = Math.max(watch.aCapMax, l.a.cap);
        const why = broken(l);
        if (why !== null && watch.violations.length < 10) watch.violations.push(why);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return watch;
}

/** Waits until `probe` holds, but for at most `polls` poll cycles after `since`: a bound counted in cycles, not seconds. */
async function withinPolls<T>(
  what: string,
  since: Date,
  polls: number,
  probe: () => Promise<T | undefined>,
): Promise<{ value: T; polls: number }> {
  return eventually(
    `${what} within ${polls} poll cycles`,
    async () => {
      const value = await probe();
      // Counted after the reading: the cycles completed by the time it held, or more.
      const completed = await pollsSince(since);
      if (value !== undefined) return { value, polls: completed };
      if (completed > polls)
        throw new Error(`not after ${completed} poll cycles: ${JSON.stringify(await live(node.edge))}`);
      return undefined;
    },
    (polls + 3) * POLL_S * 1000,
    50,
  );
}

/** What the node's agent does on each long-poll answer: write the files, reload on a structural change. */
let appliedStructure = '';
async function agentStep(): Promise<boolean> {
  const { body } = await app.admin('GET', `/v1/nodes/${node.edge.name}/config`);
  if (body.structuralHash === appliedStructure) return false;
  await node.edge.install(app.admin);
  await node.edge.reload();
  appliedStructure = body.structuralHash;
  return true;
}

beforeAll(async () => {
  app = await startTestApp({ ...CONTROL_PLANE_ENV });
  node = await startNoisyNode(app.admin, { holdMs: 600_000, delayMs: 1000 });
  // What the proxy runs: installed and started by startNoisyNode; runtime changes since keep the structure.
  appliedStructure = (await app.admin('GET', `/v1/nodes/${node.edge.name}/config`)).body.structuralHash;
  watch = watchCaps();
}, 60_000);

afterAll(async () => {
  noisy?.stop();
  await b?.stop();
  await watch?.stop();
  await node?.close();
  await app?.stop();
});

describe('noisy neighbour', () => {
  it("when A floods the node while B sends steady traffic, then A is held at its cap and every one of B's requests succeeds", async () => {
    b = steady(node.portB, B_CLIENTS, B_TIMEOUT_MS);
    await eventually(
      "B's clients connected",
      async () => ((await live(node.edge)).b.scur >= B_CLIENTS - 10 ? true : undefined),
      15_000,
      50,
    );
    // B's demand is known before A's flood starts (smoothed over two polls, it is past B's reservation).
    await cycles(2);
    const answeredBefore = b.ok;
    noisy = flood(node.portA, A_CLIENTS);
    // A is saturated: every connection its cap allows is taken and the rest of its clients are refused.
    await eventually(
      'A at its cap with connections refused',
      async () => {
        const l = await live(node.edge);
        return l.a.scur === l.a.cap && noisy!.refused() > 0 ? true : undefined;
      },
      15_000,
      50,
    );
    // Long enough for the rebalancer to have seen both tenants' demand more than once.
    await cycles(3);
    const refused = noisy.refused();
    // A uses what it may: its sessions fill its cap (a cap just raised fills as its refused clients
    // retry, within moments).
    await eventually(
      "A's sessions at its cap",
      async () => {
        const now = await live(node.edge);
        return now.a.scur >= now.a.cap ? true : undefined;
      },
      5_000,
      20,
    );
    const l = await live(node.edge);
    // A cap that came down does not cut the connections A already holds, so they may stand above
    // it, but never above the highest cap A was given. Counted in A's own table (conn_cur), not in
    // the frontend's sessions, which also hold connections being closed after their refusal; at the
    // instant the table is read, each HAProxy thread may hold one connection counted but not yet refused.
    const threads = Number(
      /^Nbthread: (\d+)$/m.exec(await runtimeCommand(node.edge.adminSocket, 'show info', 1000))?.[1],
    );
    expect(threads).toBeGreaterThan(0);
    expect(await admittedToA()).toBeLessThanOrEqual(watch!.aCapMax + threads);
    // Still wanting more than it may have: its extra clients keep being refused at accept.
    await eventually(
      "A's extra clients refused",
      async () => (noisy!.refused() > refused ? true : undefined),
      5_000,
      50,
    );
    // B holds more than its reservation: its demand (156 sessions) is met, and its clients kept going.
    expect(l.b.cap).toBeGreaterThanOrEqual(B_CLIENTS);
    expect(b.failures).toEqual([]);
    expect(b.ok - answeredBefore).toBeGreaterThan(2 * B_CLIENTS);
    expect(watch!.violations).toEqual([]);
  }, 60_000);

  it("when B goes quiet, then within two poll cycles A's cap rises on the proxy, never into B's reservation, without a reload though A is full", async () => {
    const before = (await live(node.edge)).a.cap;
    const pid = await node.edge.workerPid();
    const steadyB = b!;
    await steadyB.stop();
    b = null;
    expect(steadyB.failures).toEqual([]);
    await eventually('B quiet', async () => ((await live(node.edge)).b.scur === 0 ? true : undefined), 5_000, 20);
    // A poll that read the proxy a moment before B's last session closed does not count as quiet.
    const quiet = new Date(Date.now() + 50);
    let reloaded = false;
    const rise = await withinPolls("A's cap to rise on the proxy", quiet, 2, async () => {
      reloaded = (await agentStep()) || reloaded;
      const l = await live(node.edge);
      return l.a.cap > before ? l : undefined;
    });
    expect(rise.polls).toBeLessThanOrEqual(2);
    expect(rise.value.a.cap).toBeLessThanOrEqual(CAPACITY - B_RESERVED);
    // The cap is a map entry: it rose with `set map`, and the worker holding A's connections still runs.
    expect(reloaded).toBe(false);
    expect(await node.edge.workerPid()).toBe(pid);
    // A's refused clients, retrying, take the room the raise gave.
    const cap = rise.value.a.cap;
    await eventually(
      "A's sessions up to its raised cap",
      async () => ((await live(node.edge)).a.scur >= cap ? true : undefined),
      5_000,
      50,
    );
    expect(watch!.violations).toEqual([]);
  }, 60_000);

  it('when B comes back, then within two poll cycles it is served with at least its reservation, and every request succeeds', async () => {
    const back = new Date();
    // As many clients as B reserved: A's sessions beyond its lowered cap end only when A closes them,
    // and what B is guaranteed at once is its reservation.
    b = steady(node.portB, B_RESERVED, B_TIMEOUT_MS);
    const served = await withinPolls("B's reservation in use", back, 2, async () => {
      const l = await live(node.edge);
      return l.b.scur >= B_RESERVED ? l : undefined;
    });
    expect(served.polls).toBeLessThanOrEqual(2);
    expect(served.value.b.cap).toBeGreaterThanOrEqual(B_RESERVED);
    // B keeps running through two more cycles before its answers are counted.
    await cycles(2);
    const steadyB = b;
    await steadyB.stop();
    b = null;
    expect(steadyB.failures).toEqual([]);
    expect(steadyB.ok).toBeGreaterThan(B_RESERVED);
    expect(watch!.violations).toEqual([]);
    expect(watch!.readings).toBeGreaterThan(20);
  }, 60_000);

  it("when the caps are lifted (A's connection cap at the process's maxconn), then the same flood starves B: the guarantee above is the caps' doing", async () => {
    await watch!.stop();
    noisy?.stop();
    await liftCaps(app.cp, node);
    noisy = flood(node.portA, A_CLIENTS);
    const { maxconn, a } = await live(node.edge);
    expect(a.cap).toBe(maxconn);
    let last: Live | null = null;
    await eventually(
      'A holding every connection of the process',
      async () => {
        last = await live(node.edge);
        return last.a.scur >= maxconn ? true : undefined;
      },
      15_000,
      50,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; last reading ${JSON.stringify(last)}, A's clients connected ${noisy!.connected()}, refused ${noisy!.refused()}`,
      );
    });
    const answers = await Promise.allSettled(
      Array.from({ length: 5 }, () => request({ host: HOST, port: node.portB, path: '/starved' }, 1500)),
    );
    expect(answers.filter((a) => a.status === 'fulfilled')).toEqual([]);
  }, 60_000);
});
