import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  CONNECTION_CLIENTS,
  FAIRNESS_ENV,
  HOLD_MS,
  NODE_CAPACITY,
  POLL_S,
  RESERVED,
  TENANT_X,
  TENANT_Y,
  Y_CONNECTION_CLIENTS,
  runConnectionScenario,
  runRateScenario,
  startFairnessNode,
  watchCaps,
  type CapsWatch,
  type FairnessNode,
  type RateWindow,
} from './fairness-support.js';

/**
 * Fair shares that hold under overload (issue 11), against a real HAProxy 2.6 on loopback: one
 * node of 0.04 vCPU / 32 MB (400 req/s, 312 connections), tenants X and Y each reserving 100 req/s
 * and 78 connections, limits as large as the node, equal weights; the control plane runs as in
 * production with a stats poll every 5 s. Load is open-loop: requests leave on schedule whatever
 * the answers do. Every figure is counted per second and cut into windows at the stored poll
 * times; what each tenant was entitled to is its cap read back from the proxy while it ran.
 */

const [X, Y] = [TENANT_X.id, TENANT_Y.id];

let app: TestApp;
let node: FairnessNode;
let watch: CapsWatch;

beforeAll(async () => {
  app = await startTestApp({ ...FAIRNESS_ENV });
  node = await startFairnessNode(app.admin);
  watch = watchCaps(node.edge);
}, 60_000);

afterAll(async () => {
  await watch?.stop();
  await node?.close();
  await app?.stop();
});

/** Each scenario starts from idle tenants holding an even split of the node, whatever ran before. */
async function evenSplit(): Promise<void> {
  await expect
    .poll(
      () => {
        const caps = watch.latest()?.caps;
        return (
          caps !== undefined &&
          caps[X]!.requestsPerSecond === caps[Y]!.requestsPerSecond &&
          caps[X]!.connections === caps[Y]!.connections
        );
      },
      { timeout: 4 * POLL_S * 1000, interval: 100 },
    )
    .toBe(true);
}

const show = (w: RateWindow) =>
  JSON.stringify({ phase: w.phase, from: w.from, afterPolls: w.afterPolls, ...w.tenants });

describe('fair shares under overload', () => {
  it('when X and then both tenants offer 2.5x their reservation, then each is served its fair share of the node, Y its reservation from the first poll, and idle caps return to an even split', async () => {
    await evenSplit();
    const run = await runRateScenario(app.cp.database.db, node, watch);
    const alone = (w: RateWindow) => w.phase === 'x-busy' || w.phase === 'x-again';
    const busy = run.windows.filter((w) => alone(w) || w.phase === 'both-busy');
    expect(run.windows.filter((w) => w.phase === 'x-busy').length).toBeGreaterThanOrEqual(2);
    expect(run.windows.filter((w) => w.phase === 'x-again').length).toBeGreaterThanOrEqual(1);
    expect(run.windows.filter((w) => w.phase === 'both-busy').length).toBeGreaterThanOrEqual(3);

    for (const w of busy) {
      for (const [tenant, t] of Object.entries(w.tenants)) {
        if (t.offered === 0) continue;
        // What the proxy entitled it to, served: the cap is a rate it admits, not one it refuses past.
        expect(t.served, `${tenant} served vs its cap: ${show(w)}`).toBeGreaterThanOrEqual(
          0.9 * Math.min(t.offered, t.entitled),
        );
      }
    }
    for (const w of busy.filter(alone)) {
      // Alone, X may use up to the node minus Y's reservation (300): it offers 250 and gets it.
      expect(w.tenants[X]!.served, `X alone: ${show(w)}`).toBeGreaterThanOrEqual(0.9 * 250);
    }
    for (const w of busy.filter((w) => w.phase === 'both-busy')) {
      // Both over-subscribed: half the node each, and the node is used.
      expect(w.tenants[X]!.served, `X with Y: ${show(w)}`).toBeGreaterThanOrEqual(
        0.9 * (NODE_CAPACITY.requestsPerSecond / 2),
      );
      expect(w.tenants[Y]!.served, `Y with X: ${show(w)}`).toBeGreaterThanOrEqual(
        0.9 * (NODE_CAPACITY.requestsPerSecond / 2),
      );
      expect(w.tenants[X]!.served + w.tenants[Y]!.served, `node: ${show(w)}`).toBeGreaterThanOrEqual(
        0.9 * NODE_CAPACITY.requestsPerSecond,
      );
    }
    // Y's reservation is usable at once: from the first poll after it became busy.
    const yEarly = run.early.filter((w) => w.phase === 'both-busy');
    expect(yEarly.length).toBeGreaterThanOrEqual(3);
    for (const w of yEarly)
      expect(w.tenants[Y]!.served, `Y's reservation: ${show(w)}`).toBeGreaterThanOrEqual(
        0.95 * RESERVED.requestsPerSecond,
      );

    expect(run.lend, 'X lent the spare').not.toBeNull();
    expect(run.lend!.polls).toBeLessThanOrEqual(2);
    expect(run.fair, 'both at half the node').not.toBeNull();
    expect(run.fair!.polls).toBeLessThanOrEqual(2);
    // Idle again, from X holding the spare Y lent it: the split is even again within two polls.
    const before = run.runs.find((r) => r.spec.name === 'idle-again')!.start;
    const lastBusy = watch.readings.filter((r) => r.at < before).at(-1)!;
    expect(lastBusy.caps[X]!.requestsPerSecond, 'X held more than half before going idle').toBeGreaterThan(
      NODE_CAPACITY.requestsPerSecond / 2,
    );
    expect(run.even, 'caps even again').not.toBeNull();
    expect(run.even!.polls).toBeLessThanOrEqual(2);
    expect(run.even!.caps[X]!.requestsPerSecond).toBeGreaterThanOrEqual(RESERVED.requestsPerSecond);
  }, 110_000);

  it("when Y wants 200 connections and X none, then Y's cap is lent past them within two polls and all are served; when X comes with 150, it holds its reservation at once and both get half the node within two polls", async () => {
    await evenSplit();
    const run = await runConnectionScenario(app.cp.database.db, node, watch);
    const figures = JSON.stringify(run);
    expect(run.lent, figures).not.toBeNull();
    expect(run.lent!.polls, figures).toBeLessThanOrEqual(2);
    // Every one of Y's clients connected and served: nothing refused or waiting, answers at the member's pace.
    expect(run.yAlone.refused, figures).toBe(0);
    expect(run.yAlone.waiting, figures).toBe(0);
    expect(run.yAlone.served, figures).toBeGreaterThanOrEqual(0.8 * (Y_CONNECTION_CLIENTS / (HOLD_MS / 1000)));

    // X's reservation is usable at once: before any poll could have seen it.
    expect(run.xReserved, figures).not.toBeNull();
    expect(run.xReserved!.ms, figures).toBeLessThanOrEqual(2000);
    expect(run.fair, figures).not.toBeNull();
    expect(run.fair!.polls, figures).toBeLessThanOrEqual(2);
    for (const t of [X, Y]) {
      // Half the node each, and each served its cap's worth: X's 150 clients fit, Y's 200 do not.
      expect(run.both[t]!.cap, figures).toBeGreaterThanOrEqual(CONNECTION_CLIENTS);
      // Under their ceilings, nothing queues; a client or two slowed by a loaded machine (the suite
      // runs two files at once on two cores) is not the caps' doing.
      expect(run.both[t]!.waiting, figures).toBeLessThanOrEqual(0.02 * CONNECTION_CLIENTS);
      expect(run.both[t]!.served, figures).toBeGreaterThanOrEqual(
        0.8 * (Math.min(run.both[t]!.cap, t === X ? CONNECTION_CLIENTS : Y_CONNECTION_CLIENTS) / (HOLD_MS / 1000)),
      );
    }
    // X fits under its cap. The node is full, so a client reconnecting while its previous connection
    // is still closing (still counted) may find the cap taken, now and then: 0.1% alone, up to 6%
    // measured with the rest of the suite beside it.
    expect(run.both[X]!.refused, figures).toBeLessThanOrEqual(0.1 * (run.both[X]!.served + run.both[X]!.refused));
    // Y's clients past its cap are refused, and retry: that is the excess, not a failure.
    expect(run.both[Y]!.refused, figures).toBeGreaterThan(0);
  }, 90_000);
});
