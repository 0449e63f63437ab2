import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  completePush,
  entryHash,
  type HeldState,
  type NginxRuntimeState,
  type NginxUpstream,
  type PushReply,
  type StatePush,
} from '../../../src/domain/nginx-runtime.js';
import {
  describeNginxChange,
  describePushFailures,
  judgePush,
  planNginxRuntime,
} from '../../../src/domain/nginx-runtime-plan.js';
import { assertProperty, check, scenario } from '../../support/property.js';

/**
 * Planning an NGINX node's partial push from what its channel says it holds. The node is played by
 * a small model of the contract's rules (hashes per entry, a lower revision refused as stale, a
 * full dictionary refusing an entry and keeping what it held), so every case is a round trip:
 * plan, push to the model, plan again.
 */

const peer = (name: string, over: Partial<NginxUpstream['peers'][number]> = {}) => ({
  name,
  address: '10.0.0.1',
  port: 8080,
  weight: 100,
  admin: 'ready' as const,
  backup: false,
  cookie: null,
  ...over,
});

const upstream = (tenant: string, pool: string, peers = [peer('m1'), peer('m2')]): NginxUpstream => ({
  tenant,
  pool,
  algorithm: 'roundrobin',
  cookie: null,
  healthCheck: null,
  peers,
});

const state = (revision: number, over: Partial<NginxRuntimeState> = {}): NginxRuntimeState => ({
  revision,
  upstreams: { t_a_web: upstream('a', 'web'), t_b_api: upstream('b', 'api') },
  caps: { a: { maxConnections: 100, requestsPerSecond: 50 }, b: { maxConnections: 10, requestsPerSecond: 5 } },
  ...over,
});

/** A node's channel as the contract describes it: entries with revision and hash, stale refused, full refused. */
class ModelNode {
  upstreams = new Map<string, { revision: number; hash: string }>();
  caps = new Map<string, { revision: number; hash: string }>();
  /** Keys (`upstream <name>`) the next pushes cannot store, as a full dictionary. */
  full = new Set<string>();

  held(): HeldState {
    return {
      upstreams: Object.fromEntries(this.upstreams),
      caps: Object.fromEntries(this.caps),
      fileRevision: 0,
    };
  }

  push(body: StatePush): PushReply {
    let applied = 0;
    const stale: string[] = [];
    const failed: { key: string; error: string }[] = [];
    const apply = (kind: 'upstream' | 'caps', into: Map<string, { revision: number; hash: string }>) => {
      const entries = kind === 'upstream' ? body.upstreams : body.caps;
      for (const [name, e] of Object.entries(entries)) {
        const key = `${kind} ${name}`;
        const now = into.get(name);
        if (now !== undefined && now.revision > e.revision) stale.push(key);
        else if (this.full.has(key)) failed.push({ key, error: 'sy_state is full' });
        else {
          into.set(name, { revision: e.revision, hash: e.hash });
          applied += 1;
        }
      }
      for (const name of (kind === 'upstream' ? body.removed?.upstreams : body.removed?.caps) ?? []) {
        const now = into.get(name);
        if (now !== undefined && now.revision > body.removed!.revision) stale.push(`${kind} ${name}`);
        else {
          into.delete(name);
          applied += 1;
        }
      }
    };
    apply('upstream', this.upstreams);
    apply('caps', this.caps);
    return { applied, stale, failed };
  }

  /** What a node that loaded `runtime-state.json` of `s` holds. */
  static loaded(s: NginxRuntimeState): ModelNode {
    const node = new ModelNode();
    node.push(completePush(s));
    return node;
  }
}

describe('planning a push to an NGINX node', () => {
  it('when the node holds the desired entries, then nothing is pushed, however old their revisions', () => {
    const node = ModelNode.loaded(state(3));
    const plan = planNginxRuntime(state(9), node.held());
    expect(plan).toEqual({ push: null, changes: [], ahead: [], deferred: [] });
  });

  it("when a member's weight changes, then only its upstream is pushed, at the new revision, hashed as the state file hashes it", () => {
    const node = ModelNode.loaded(state(3));
    const desired = state(4, {
      upstreams: { ...state(4).upstreams, t_a_web: upstream('a', 'web', [peer('m1', { weight: 20 }), peer('m2')]) },
    });
    const plan = planNginxRuntime(desired, node.held());
    expect(plan.changes).toEqual([{ entry: 'upstream', name: 't_a_web', action: 'change' }]);
    expect(plan.push).toEqual({
      complete: false,
      upstreams: { t_a_web: completePush(desired).upstreams.t_a_web },
      caps: {},
    });
    expect(plan.push!.upstreams.t_a_web!.hash).toBe(entryHash(desired.upstreams.t_a_web));
  });

  it('when members are added, drained, disabled or made backup, then each changed upstream is pushed whole', () => {
    const node = ModelNode.loaded(state(3));
    const desired = state(4, {
      upstreams: {
        t_a_web: upstream('a', 'web', [peer('m1', { admin: 'drain' }), peer('m2', { backup: true }), peer('m3')]),
        t_b_api: upstream('b', 'api', [peer('m1', { admin: 'maint' }), peer('m2')]),
      },
    });
    const plan = planNginxRuntime(desired, node.held());
    expect(plan.changes.map((c) => `${c.action} ${c.name}`)).toEqual(['change t_a_web', 'change t_b_api']);
    expect(plan.push!.upstreams.t_a_web!.value.peers.map((p) => p.name)).toEqual(['m1', 'm2', 'm3']);
  });

  it('when a pool and a tenant are new, then their upstream and caps are added', () => {
    const node = ModelNode.loaded(state(3));
    const desired = state(5, {
      upstreams: { ...state(5).upstreams, t_c_web: upstream('c', 'web') },
      caps: { ...state(5).caps, c: { maxConnections: 1, requestsPerSecond: 1 } },
    });
    const plan = planNginxRuntime(desired, node.held());
    expect(plan.changes).toEqual([
      { entry: 'upstream', name: 't_c_web', action: 'add' },
      { entry: 'caps', name: 'c', action: 'add' },
    ]);
    expect(plan.push!.caps.c).toMatchObject({ revision: 5, value: { maxConnections: 1, requestsPerSecond: 1 } });
  });

  it("when the rebalancer moves a tenant's caps, then only its caps entry is pushed", () => {
    const node = ModelNode.loaded(state(3));
    const desired = state(4, { caps: { ...state(4).caps, b: { maxConnections: 40, requestsPerSecond: 20 } } });
    const plan = planNginxRuntime(desired, node.held());
    expect(plan.changes).toEqual([{ entry: 'caps', name: 'b', action: 'change' }]);
    expect(Object.keys(plan.push!.upstreams)).toEqual([]);
  });

  it('when a pool and a tenant are gone, then they are removed at the desired revision', () => {
    const node = ModelNode.loaded(state(3));
    const desired = state(6, { upstreams: { t_a_web: upstream('a', 'web') }, caps: { a: state(6).caps.a! } });
    const plan = planNginxRuntime(desired, node.held());
    expect(plan.changes).toEqual([
      { entry: 'upstream', name: 't_b_api', action: 'remove' },
      { entry: 'caps', name: 'b', action: 'remove' },
    ]);
    expect(plan.push).toEqual({
      complete: false,
      upstreams: {},
      caps: {},
      removed: { upstreams: ['t_b_api'], caps: ['b'], revision: 6 },
    });
    node.push(plan.push!);
    expect(planNginxRuntime(desired, node.held()).push).toBeNull();
  });

  it('while the node runs an older configuration, then what is gone stays until it applies a newer one, and the rest goes now', () => {
    const node = ModelNode.loaded(state(3));
    const desired = state(6, {
      upstreams: { t_a_web: upstream('a', 'web', [peer('m1', { weight: 5 })]) },
      caps: { a: state(6).caps.a! },
    });
    const plan = planNginxRuntime(desired, node.held(), { deferRemovals: true });
    expect(plan.changes).toEqual([{ entry: 'upstream', name: 't_a_web', action: 'change' }]);
    expect(plan.push!.removed).toBeUndefined();
    expect(plan.deferred).toEqual(['upstream t_b_api', 'caps b']);
    node.push(plan.push!);
    expect(planNginxRuntime(desired, node.held(), { deferRemovals: true }).push).toBeNull();
    expect(planNginxRuntime(desired, node.held()).push!.removed).toEqual({
      upstreams: ['t_b_api'],
      caps: ['b'],
      revision: 6,
    });
  });

  it('when a tenant is being validated, then its entries stay as the node holds them (whichever part it runs) while the others change', () => {
    // b's new part renames its pool (t_b_rpc), and the node may run either: b is unsettled, not in the state.
    const node = ModelNode.loaded(state(3));
    const desired = state(6, {
      upstreams: { t_a_web: upstream('a', 'web', [peer('m1', { weight: 5 })]) },
      caps: { a: state(6).caps.a! },
    });
    const leftAlone = { upstreams: new Set(['t_b_api', 't_b_rpc']), caps: new Set(['b']) };
    const plan = planNginxRuntime(desired, node.held(), { leftAlone });
    expect(plan.changes).toEqual([{ entry: 'upstream', name: 't_a_web', action: 'change' }]);
    expect(plan.push!.removed).toBeUndefined();
    expect(plan.deferred).toEqual([]);
    node.push(plan.push!);
    expect(node.held().upstreams.t_b_api).toBeDefined();
    expect(node.held().caps.b).toBeDefined();
    // Not left alone, the same plan takes b out.
    expect(planNginxRuntime(desired, node.held()).push!.removed).toEqual({
      upstreams: ['t_b_api'],
      caps: ['b'],
      revision: 6,
    });
  });

  it('when the node holds an entry at a newer revision than this state, then it is left alone, changed or removed', () => {
    // Another replica, from a newer state, already pushed t_a_web changed and t_c_web added.
    const node = ModelNode.loaded(state(3));
    const newer = state(8, {
      upstreams: { ...state(8).upstreams, t_a_web: upstream('a', 'web', [peer('m9')]), t_c_web: upstream('c', 'web') },
    });
    node.push(planNginxRuntime(newer, node.held()).push!);
    const plan = planNginxRuntime(state(7), node.held());
    expect(plan.push).toBeNull();
    expect(plan.ahead).toEqual(['upstream t_a_web', 'upstream t_c_web']);
  });

  it('when the node holds an entry of the same revision with another hash, then it is pushed (the node accepts an equal revision)', () => {
    const node = ModelNode.loaded(state(4, { upstreams: { t_a_web: upstream('a', 'web', [peer('m1')]) } }));
    const plan = planNginxRuntime(state(4), node.held());
    expect(plan.changes).toContainEqual({ entry: 'upstream', name: 't_a_web', action: 'change' });
  });
});

describe("judging the node's reply", () => {
  it('when a slower push already landed a newer entry, then the stale one is counted apart, not as a failure', () => {
    const node = ModelNode.loaded(state(3));
    const older = state(4, { caps: { ...state(4).caps, a: { maxConnections: 1, requestsPerSecond: 1 } } });
    const plan = planNginxRuntime(older, node.held());
    // Before this push arrives, a newer state lands on the node.
    node.push(completePush(state(5, { caps: { ...state(5).caps, a: { maxConnections: 2, requestsPerSecond: 2 } } })));
    const outcome = judgePush(plan, node.push(plan.push!));
    expect(outcome).toEqual({ sent: 1, ok: 0, stale: ['caps a'], failed: [] });
    expect(node.held().caps.a!.revision).toBe(5);
  });

  it('when a full dictionary refuses an entry, then it fails, the rest is applied, and the next plan pushes it again', () => {
    const node = ModelNode.loaded(state(3));
    node.full.add('upstream t_c_web');
    const desired = state(4, {
      upstreams: { ...state(4).upstreams, t_c_web: upstream('c', 'web') },
      caps: { ...state(4).caps, c: { maxConnections: 1, requestsPerSecond: 1 } },
    });
    const first = planNginxRuntime(desired, node.held());
    const outcome = judgePush(first, node.push(first.push!));
    expect(outcome).toEqual({
      sent: 2,
      ok: 1,
      stale: [],
      failed: [{ key: 'upstream t_c_web', error: 'sy_state is full' }],
    });
    expect(describePushFailures(outcome.failed)).toBe('upstream t_c_web: sy_state is full');
    const retry = planNginxRuntime(desired, node.held());
    expect(retry.changes).toEqual([{ entry: 'upstream', name: 't_c_web', action: 'add' }]);
    node.full.clear();
    expect(judgePush(retry, node.push(retry.push!))).toMatchObject({ ok: 1, failed: [] });
    expect(planNginxRuntime(desired, node.held()).push).toBeNull();
  });

  it('names every failure after the first by count', () => {
    expect(
      describePushFailures([
        { key: 'upstream x', error: 'full' },
        { key: 'upstream y', error: 'full' },
        { key: 'caps z', error: 'full' },
      ]),
    ).toBe('upstream x: full (and 2 more)');
    expect(describePushFailures([])).toBeNull();
  });
});

describe('the plan as it is shown', () => {
  it('says what each entry becomes: peers with weight or state, caps in numbers', () => {
    const desired = state(4, {
      upstreams: {
        t_a_web: {
          ...upstream('a', 'web', [peer('m1', { weight: 20 }), peer('m2', { admin: 'drain', backup: true })]),
          healthCheck: {
            type: 'http',
            path: '/',
            host: null,
            expectedStatus: [[200, 399]],
            port: null,
            intervalMs: 1000,
            timeoutMs: 500,
            rise: 2,
            fall: 3,
          },
        },
      },
    });
    expect(describeNginxChange({ entry: 'upstream', name: 't_a_web', action: 'change' }, desired)).toEqual({
      command: 'set upstream t_a_web',
      description: 'changed upstream of pool web of tenant a: roundrobin, http check; m1 weight 20, m2 drain backup',
    });
    expect(describeNginxChange({ entry: 'caps', name: 'a', action: 'add' }, desired)).toEqual({
      command: 'set caps a',
      description: 'new caps of tenant a: 100 requests in flight, 50 requests/s',
    });
    expect(describeNginxChange({ entry: 'upstream', name: 't_old', action: 'remove' }, desired).command).toBe(
      'remove upstream t_old',
    );
  });
});

/** A random runtime state over a few names, so that held and desired overlap, differ and miss each other. */
function randomState(rng: Parameters<Parameters<typeof scenario>[0]>[0], revision: number): NginxRuntimeState {
  const upstreams: Record<string, NginxUpstream> = {};
  const caps: Record<string, NginxRuntimeState['caps'][string]> = {};
  for (const t of ['a', 'b', 'c', 'd']) {
    if (rng.chance(0.6)) caps[t] = { maxConnections: rng.int(1, 3), requestsPerSecond: rng.int(1, 3) };
    for (const p of ['web', 'api']) {
      if (!rng.chance(0.5)) continue;
      const peers = ['m1', 'm2', 'm3']
        .filter(() => rng.chance(0.7))
        .map((m) => peer(m, { weight: rng.int(0, 2), admin: rng.pick(['ready', 'drain', 'maint'] as const) }));
      upstreams[`t_${t}_${p}`] = upstream(t, p, peers);
    }
  }
  return { revision, upstreams, caps };
}

describe('a plan brings the node to the desired state in one push', () => {
  it('from any held state of an older or equal revision: after the push, the next plan is empty', () => {
    assertProperty(
      fc.property(
        scenario((rng) => {
          const heldRevision = rng.int(1, 5);
          return {
            held: randomState(rng, heldRevision),
            desired: randomState(rng, heldRevision + rng.int(0, 3)),
          };
        }),
        ({ held, desired }) => {
          const node = ModelNode.loaded(held);
          const plan = planNginxRuntime(desired, node.held());
          if (plan.push !== null) {
            const reply = node.push(plan.push);
            check(reply.stale.length === 0 && reply.failed.length === 0, () => `refused: ${JSON.stringify(reply)}`);
            check(reply.applied === plan.changes.length, () => `applied ${reply.applied} of ${plan.changes.length}`);
          }
          const again = planNginxRuntime(desired, node.held());
          check(again.push === null, () => `still to push: ${JSON.stringify(again.changes)}`);
          const wanted = completePush(desired);
          const hashes = (r: Readonly<Record<string, { hash: string }>>) =>
            Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.hash]));
          expect(hashes(node.held().upstreams)).toEqual(hashes(wanted.upstreams));
          expect(hashes(node.held().caps)).toEqual(hashes(wanted.caps));
        },
      ),
      200,
    );
  });
});
