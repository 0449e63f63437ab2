import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Database } from '../../../src/db/schema.js';
import type { ProxyNode } from '../../../src/domain/node.js';
import type { NodeSnapshot } from '../../../src/domain/snapshot.js';
import { NodeReconciler, type NodeReconcilerDeps } from '../../../src/jobs/node-reconciler.js';
import { createLogger } from '../../../src/logger.js';

/** A database that accepts every statement and returns no rows: the node reconciler only records through it. */
const db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

const node = {
  name: 'edge-1',
  kind: 'haproxy',
  runtimeAddress: { host: '127.0.0.1', port: 1 },
  configDir: '/etc/x',
  capacity: { vcpu: 1, memoryMb: 512 },
} as unknown as ProxyNode;

const observation = {
  ok: true,
  idsOf: () => undefined,
  observed: { backends: [], frontends: [], servers: [], capsMap: [], certificates: new Map() },
} as const;

/** A fleet of one fake node: counts passes and revision queries; every pass finds nothing to do. */
function harness(current: { revision: number }) {
  const calls = { revisionQueries: 0, snapshots: [] as (number | undefined)[], plans: 0 };
  let release: (() => void) | null = null;
  let gate: Promise<void> | null = null;
  const deps: NodeReconcilerDeps = {
    db,
    logger: createLogger(process.env.DEBUG_TEST ? 'debug' : 'silent'),
    // Builds stand for a revision older than any pass's: every pass stays a runtime push.
    build: async () => ({ config: { revision: 0 }, snapshot: { revision: 0, node, tenants: [] } }) as never,
    currentRevision: async () => {
      calls.revisionQueries += 1;
      return current.revision;
    },
    runtimeSnapshot: async (_node, atLeast) => {
      calls.snapshots.push(atLeast);
      const revision = current.revision; // what the load reads, when it starts
      await gate;
      return { revision, node: { ...node }, tenants: [] } as unknown as NodeSnapshot;
    },
    runtime: {
      executor: () => ({ execute: async () => [] }),
      startObservation: (_n, _e, target) => ({ target, observation: Promise.resolve(observation) }),
      firstTarget: () => ({ mapFile: '/etc/x/maps/tenant-caps.map', certificateFiles: [] }),
      plan: async () => {
        calls.plans += 1;
        return {
          desired: {
            frontends: [],
            backends: [],
            capsMap: { file: '/etc/x/maps/tenant-caps.map', entries: [], referenced: false },
            certificates: [],
          },
          observation,
          plan: { commands: [], pendingReload: [], inProgress: [], notes: [], deferredCaps: [] },
        };
      },
    },
  };
  const reconciler = new NodeReconciler(node, deps, {
    backoff: { initialMs: 10, maxMs: 10, factor: 1 },
    followUpMs: 60_000,
  });
  return {
    reconciler,
    deps,
    calls,
    /** Holds the next snapshot loads until `open()`. */
    hold: () => (gate = new Promise((r) => (release = r))),
    open: () => {
      release?.();
      gate = null;
    },
  };
}

/**
 * A node reconciler over the harness whose builds are counted and whose Runtime API behaves as
 * `runtime` overrides say; its retry is far in the future, so only wake-ups cause work.
 */
function countingBuilds(
  runtime: (base: NodeReconcilerDeps['runtime']) => Partial<NodeReconcilerDeps['runtime']>,
  options: { buildAfterPushMs?: number; minBuildIntervalMs?: number } = {},
) {
  let builds = 0;
  const starts: number[] = [];
  const h = harness({ revision: 5 });
  const deps: NodeReconcilerDeps = {
    ...h.deps,
    build: async () => {
      builds += 1;
      starts.push(performance.now());
      return { config: { revision: 0 }, snapshot: { revision: 0, node, tenants: [] } } as never;
    },
    runtime: { ...h.deps.runtime, ...runtime(h.deps.runtime) },
  };
  const reconciler = new NodeReconciler(node, deps, {
    backoff: { initialMs: 60_000, maxMs: 60_000, factor: 1 },
    followUpMs: 60_000,
    ...options,
  });
  return { reconciler, builds: () => builds, starts };
}

describe('NodeReconciler wake-ups', () => {
  it('trusts an announced revision (no revision query) and ignores the same commit heard again', async () => {
    const current = { revision: 5 };
    const h = harness(current);
    h.reconciler.wake(); // the first pass asks the database
    await h.reconciler.idle();
    expect(h.calls).toMatchObject({ revisionQueries: 1, plans: 1 });
    current.revision = 6;
    h.reconciler.wake(6); // at COMMIT
    await h.reconciler.idle();
    h.reconciler.wake(6); // the same commit through NOTIFY
    h.reconciler.wake(4); // an older one, late
    await h.reconciler.idle();
    // One pass for 6 (it loaded 6; no tenant changed, so it planned nothing) and none for the repeats.
    expect(h.calls).toMatchObject({ revisionQueries: 1, plans: 1 });
    expect(h.calls.snapshots).toHaveLength(2);
    expect(h.calls.snapshots.at(-1)).toBe(6);
    await h.reconciler.stop();
  });

  it('runs one more pass for a burst announced during a pass, and none when the pass already loaded it', async () => {
    const current = { revision: 10 };
    const h = harness(current);
    h.reconciler.wake();
    await h.reconciler.idle();
    h.hold();
    current.revision = 14; // 11 to 14 all committed before the pass for 11 loads the state
    h.reconciler.wake(11);
    for (const r of [12, 13, 14]) h.reconciler.wake(r); // their announcements arrive while that pass runs
    h.open();
    await h.reconciler.idle();
    // The pass for 11 loaded revision 14: the burst needed no second pass.
    expect(h.calls.snapshots).toHaveLength(2);
    h.hold();
    current.revision = 15;
    h.reconciler.wake(15);
    await new Promise((r) => setImmediate(r)); // the pass has started loading revision 15
    current.revision = 16; // committed after the load read 15
    h.reconciler.wake(16);
    h.open();
    await h.reconciler.idle();
    expect(h.calls.snapshots).toHaveLength(4);
    expect(h.calls.snapshots.at(-1)).toBe(16);
    expect(h.calls.revisionQueries).toBe(1);
    await h.reconciler.stop();
  });

  it('asks the database on a wake without a revision (timer, new settings)', async () => {
    const current = { revision: 3 };
    const h = harness(current);
    h.reconciler.wake(3);
    await h.reconciler.idle();
    h.reconciler.wake();
    await h.reconciler.idle();
    // The wake without a revision asks the database, and reads the whole node (it may have moved by itself).
    expect(h.calls).toMatchObject({ revisionQueries: 1, plans: 2 });
    await h.reconciler.stop();
  });
});

describe('NodeReconciler while its Runtime API is down', () => {
  it('keeps building the config for each new revision (the agent still fetches it) while the push backs off', async () => {
    const { reconciler, builds } = countingBuilds(() => ({
      plan: async () => ({
        desired: {} as never,
        observation: { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:1' },
        plan: null,
      }),
    }));
    reconciler.wake();
    await reconciler.idle();
    expect(builds()).toBe(1); // the failed pass still asked for the build
    reconciler.wake(7); // a write commits while the proxy is down
    await reconciler.idle();
    expect(builds()).toBe(2);
    reconciler.wake(7); // the same commit heard again through NOTIFY
    await reconciler.idle();
    expect(builds()).toBe(2);
    await reconciler.stop();
  });
});

describe('NodeReconciler config builds under a stream of writes', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('coalesces them: builds start at most once per interval, and the last starts after the last write', async () => {
    const { reconciler, builds, starts } = countingBuilds(
      () => ({
        plan: async () => ({
          desired: {} as never,
          observation: { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:1' },
          plan: null,
        }),
      }),
      { minBuildIntervalMs: 40 },
    );
    reconciler.wake();
    await reconciler.idle();
    const first = builds();
    const began = performance.now();
    let lastWrite = 0;
    for (let revision = 7; revision < 57; revision++) {
      reconciler.wake(revision); // 50 commits, 4 ms apart: about 200 ms of writes
      lastWrite = performance.now();
      await vi.advanceTimersByTimeAsync(4);
    }
    await vi.advanceTimersByTimeAsync(40); // the last build waits out its spacing
    await reconciler.idle();
    const elapsed = performance.now() - began;
    const during = builds() - first;
    expect(during).toBeGreaterThan(0);
    expect(during).toBeLessThanOrEqual(Math.ceil(elapsed / 40) + 1);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(40);
    expect(starts.at(-1)!).toBeGreaterThanOrEqual(lastWrite);
    await reconciler.stop();
  });
});

describe('NodeReconciler config builds behind a slow push', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A node whose read (when `answers`) or whose push takes until `release()`; counts builds. */
  function slowNode(answers: boolean) {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const counted = countingBuilds(
      (base) => ({
        startObservation: (name, endpoint, target) => {
          const read = base.startObservation(name, endpoint, target);
          return answers ? read : { target, observation: held.then(() => read.observation) };
        },
        plan: async (...args) => {
          await held;
          return base.plan(...args);
        },
      }),
      { buildAfterPushMs: 20 },
    );
    return { ...counted, release };
  }

  it('builds without waiting for a push to a node that does not answer its read, and once per pass', async () => {
    const n = slowNode(false); // a proxy that is down: connect backoff, timeouts
    n.reconciler.wake();
    await vi.advanceTimersByTimeAsync(100);
    expect(n.builds()).toBe(1); // built while the push still waits
    n.release();
    await n.reconciler.idle();
    expect(n.builds()).toBe(1); // and not again when the push ends
    await n.reconciler.stop();
  });

  it('keeps the build behind a long push to a node that answered (a large batch), so haproxy -c does not slow it', async () => {
    const n = slowNode(true);
    n.reconciler.wake();
    await vi.advanceTimersByTimeAsync(100);
    expect(n.builds()).toBe(0);
    n.release();
    await n.reconciler.idle();
    expect(n.builds()).toBe(1);
    await n.reconciler.stop();
  });
});

describe('NodeReconciler scoped passes (a change reads only the tenants it touched)', () => {
  const tenant = (id: string, weight = 1) => ({ id, vips: [], pools: [], certificates: [], allocation: { weight } });

  /** A node whose snapshot holds `tenants` (replace an entry to change that tenant); records each plan's scope. */
  function scopedHarness() {
    const state = { revision: 1, tenants: [tenant('a'), tenant('b'), tenant('c')], failNext: false, commands: 0 };
    const scopes: (string[] | 'whole')[] = [];
    const h = harness({ revision: 1 });
    const deps: NodeReconcilerDeps = {
      ...h.deps,
      currentRevision: async () => state.revision,
      runtimeSnapshot: async () => ({ revision: state.revision, node, tenants: [...state.tenants] }) as never,
      runtime: {
        ...h.deps.runtime,
        // Every command is acknowledged.
        executor: () => ({
          execute: async (commands) => commands.map((command) => ({ status: 'ok' as const, command, output: '' })),
        }),
        plan: async (_n, _e, _s, options) => {
          scopes.push(options?.scope === undefined ? 'whole' : [...options.scope.tenants].sort());
          if (state.failNext) {
            state.failNext = false;
            return { desired: {} as never, observation: { ok: false, error: 'connection reset' }, plan: null };
          }
          const line = 'set server be/m weight 2';
          const command = { kind: 'set-server-weight', target: 'worker', line, payload: null, description: line };
          const commands = Array.from({ length: state.commands }, () => command);
          return {
            desired: {
              frontends: [],
              backends: [],
              capsMap: { file: '/m', entries: [], referenced: false },
              certificates: [],
            },
            observation,
            plan: { commands, pendingReload: [], inProgress: [], notes: [], deferredCaps: [] },
          } as never;
        },
      },
    };
    const reconciler = new NodeReconciler(node, deps, {
      backoff: { initialMs: 1, maxMs: 1, factor: 1 },
      followUpMs: 1,
    });
    const change = (id: string) => {
      state.revision += 1;
      state.tenants = state.tenants.map((t) => (t.id === id ? tenant(id, 2) : t));
      reconciler.wake(state.revision);
    };
    return { reconciler, state, scopes, change, logger: deps.logger };
  }

  it('reads the whole node first, then only the tenant a commit changed; a timer or reload wake reads it whole again', async () => {
    const s = scopedHarness();
    s.reconciler.wake();
    await s.reconciler.idle();
    s.change('b');
    await s.reconciler.idle();
    s.reconciler.wake(); // the safety-net timer, or an agent's reload
    await s.reconciler.idle();
    expect(s.scopes).toEqual(['whole', ['b'], 'whole']);
    await s.reconciler.stop();
  });

  it('after a failed pass, the retry reads the whole node (what the failed one sent may have half-landed)', async () => {
    const s = scopedHarness();
    s.reconciler.wake();
    await s.reconciler.idle();
    s.state.failNext = true;
    s.change('a');
    await vi.waitFor(() => expect(s.scopes).toHaveLength(3));
    await s.reconciler.stop();
    expect(s.scopes).toEqual(['whole', ['a'], 'whole']);
  });

  it('a scoped pass that sent commands is checked by a follow-up over the same tenants, not the whole node', async () => {
    const s = scopedHarness();
    s.reconciler.wake();
    await s.reconciler.idle();
    s.state.commands = 1;
    s.change('c');
    // The follow-up plans the same commands again (the fake node keeps nothing): the reconciler
    // stops repeating them after one check, so the passes end.
    await vi.waitFor(() => expect(s.scopes.length).toBeGreaterThanOrEqual(3));
    await s.reconciler.stop();
    expect(s.scopes.slice(0, 3)).toEqual(['whole', ['c'], ['c']]);
  });

  it("after an agent's reload, the last commands planned again are the new worker catching up: no warning, and a follow-up checks them", async () => {
    const s = scopedHarness();
    const warn = vi.spyOn(s.logger, 'warn');
    s.reconciler.wake();
    await s.reconciler.idle();
    s.state.commands = 1;
    s.change('c');
    await vi.waitFor(() => expect(s.scopes.length).toBeGreaterThanOrEqual(3));
    await s.reconciler.idle();
    // Without a reload, the follow-up planning the same commands is a proxy that keeps nothing.
    expect(s.scopes).toEqual(['whole', ['c'], ['c']]);
    expect(warn.mock.calls.map((c) => c[1])).toEqual([
      'runtime state does not converge: the same commands were planned twice',
    ]);
    warn.mockClear();
    s.reconciler.reloaded();
    await vi.waitFor(() => expect(s.scopes.length).toBeGreaterThanOrEqual(5));
    await s.reconciler.idle();
    await s.reconciler.stop();
    // The pass after the reload sends them without a warning and is followed up; only that
    // follow-up, planning them once more with no reload between, warns.
    expect(s.scopes.slice(3)).toEqual(['whole', 'whole']);
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
