import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/schema.js';
import type {
  HeldState,
  NginxRuntimeChannel,
  NginxStats,
  PushReply,
  StatePush,
} from '../../../src/domain/nginx-runtime.js';
import type { ProxyNode } from '../../../src/domain/node.js';
import type { NodeSnapshot, TenantSnapshot } from '../../../src/domain/snapshot.js';
import { NodeReconciler, type NodeReconcilerDeps } from '../../../src/jobs/node-reconciler.js';
import { createLogger } from '../../../src/logger.js';
import { NginxRuntimePlanner } from '../../../src/services/nginx-runtime-planner.js';

/**
 * The reconciler's pass for an NGINX node with a runtime channel, over the real planner and a
 * channel played by a small in-memory node (entries by revision and hash, as the contract has
 * them; a full dictionary; a channel that does not answer). What the pass records on the node is
 * read from the statements it sends; what it counts, from the metrics it feeds.
 */

/** Statements the reconciler sends, with their parameters: `update "nodes"` carries the recorded push. */
const statements: { sql: string; parameters: readonly unknown[] }[] = [];
const db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
  log: (event) => {
    if (event.level === 'query') statements.push({ sql: event.query.sql, parameters: event.query.parameters });
  },
});

/** The runtime columns of the last `update "nodes"`: [revision?, pending, error, ...]. */
function lastRecord(): { pending: unknown; error: unknown } {
  const update = statements.filter((s) => s.sql.startsWith('update "nodes"')).at(-1);
  if (update === undefined) throw new Error('nothing recorded');
  const columns = [...update.sql.matchAll(/"(runtime_[a-z_]+)" = /g)].map((m) => m[1]);
  const value = (column: string) => update.parameters[columns.indexOf(column)];
  return { pending: value('runtime_pending'), error: value('runtime_error') };
}

const node = {
  name: 'ngx-1',
  kind: 'nginx',
  runtimeAddress: { host: '127.0.0.1', port: 1 },
  configDir: '/etc/x',
  capacity: { vcpu: 1, memoryMb: 512 },
  appliedRevision: null,
} as unknown as ProxyNode;

const member = (name: string, weight = 100) => ({
  name,
  pool: 'web',
  address: '10.0.0.1',
  port: 8080,
  weight,
  state: 'enabled' as const,
  backup: false,
});

function snapshot(revision: number, weights: Record<string, number>, tenants = ['a']): NodeSnapshot {
  return {
    revision,
    node: {
      name: node.name,
      kind: 'nginx',
      runtimeAddress: node.runtimeAddress,
      capacity: node.capacity,
      configDir: '/etc/x',
    },
    tenants: tenants.map(
      (id) =>
        ({
          id,
          vips: [],
          certificates: [],
          pools: [
            {
              name: 'web',
              algorithm: 'roundrobin',
              healthCheck: null,
              tls: null,
              members: Object.entries(weights).map(([m, w]) => member(m, w)),
            },
          ],
          allocation: { maxConnections: 100, requestsPerSecond: 50 },
        }) as unknown as TenantSnapshot,
    ),
  };
}

/** An NGINX node's channel in memory. */
class FakeNode implements NginxRuntimeChannel {
  readonly entries = new Map<string, { revision: number; hash: string }>();
  pushes: StatePush[] = [];
  statsReads = 0;
  /** Entry keys (`t_a_web`, `caps a`) the dictionary has no room for. */
  full = new Set<string>();
  down: string | null = null;

  async held(): Promise<HeldState> {
    if (this.down !== null) throw new Error(this.down);
    const upstreams: Record<string, { revision: number; hash: string }> = {};
    const caps: Record<string, { revision: number; hash: string }> = {};
    for (const [key, e] of this.entries) {
      if (key.startsWith('caps ')) caps[key.slice(5)] = e;
      else upstreams[key] = e;
    }
    return { upstreams, caps, fileRevision: 0 };
  }

  async push(body: StatePush): Promise<PushReply> {
    if (this.down !== null) throw new Error(this.down);
    this.pushes.push(body);
    const failed: { key: string; error: string }[] = [];
    let applied = 0;
    const set = (key: string, e: { revision: number; hash: string }) => {
      if (this.full.has(key)) failed.push({ key, error: 'sy_state is full' });
      else {
        this.entries.set(key, { revision: e.revision, hash: e.hash });
        applied += 1;
      }
    };
    for (const [name, e] of Object.entries(body.upstreams)) set(name, e);
    for (const [tenant, e] of Object.entries(body.caps)) set(`caps ${tenant}`, e);
    for (const name of body.removed?.upstreams ?? []) this.entries.delete(name);
    for (const tenant of body.removed?.caps ?? []) this.entries.delete(`caps ${tenant}`);
    return { applied, stale: [], failed };
  }

  async stats(): Promise<NginxStats> {
    this.statsReads += 1;
    return { now: 0, vips: {}, upstreams: {}, peers: {}, tenants: {} };
  }

  close(): void {}
}

const reconcilers: NodeReconciler[] = [];
afterEach(async () => {
  await Promise.all(reconcilers.splice(0).map((r) => r.stop()));
  statements.length = 0;
});

function harness(fake: FakeNode, state: { snapshot: NodeSnapshot }, nginx = true, retryMs = 60_000) {
  const counted: Record<string, number> = {};
  let builds = 0;
  const deps: NodeReconcilerDeps = {
    db,
    logger: createLogger('silent'),
    build: async () => {
      builds += 1;
      return { config: { revision: state.snapshot.revision }, snapshot: state.snapshot } as never;
    },
    currentRevision: async () => state.snapshot.revision,
    runtimeSnapshot: async () => state.snapshot,
    runtime: {
      executor: () => {
        throw new Error('an NGINX node has no HAProxy Runtime API');
      },
      startObservation: () => {
        throw new Error('an NGINX node has no HAProxy Runtime API');
      },
      firstTarget: () => ({ mapFile: '', certificateFiles: [] }),
      plan: () => {
        throw new Error('an NGINX node has no HAProxy Runtime API');
      },
    },
    nginx: nginx ? new NginxRuntimePlanner({ channel: () => fake }) : undefined,
    metrics: {
      reconcileDuration: { observe: () => undefined },
      runtimeCommands: {
        inc: ({ outcome }, n) => {
          counted[outcome] = (counted[outcome] ?? 0) + n;
        },
      },
    },
  };
  const reconciler = new NodeReconciler(node, deps, {
    backoff: { initialMs: retryMs, maxMs: retryMs, factor: 1 },
    followUpMs: 60_000,
    nginxHealthIntervalMs: 0,
  });
  reconcilers.push(reconciler);
  return {
    reconciler,
    counted,
    builds: () => builds,
    pass: async (revision?: number) => {
      reconciler.wake(revision);
      await reconciler.idle();
    },
  };
}

describe('the reconcile pass of an NGINX node with a runtime channel', () => {
  it('pushes the whole state to an empty node, then only the entry a write changed, counting each entry', async () => {
    const fake = new FakeNode();
    const state = { snapshot: snapshot(3, { m1: 100, m2: 100 }) };
    const h = harness(fake, state);
    await h.pass();
    expect(fake.pushes).toHaveLength(1);
    expect(Object.keys(fake.pushes[0]!.upstreams)).toEqual(['t_a_web']);
    expect(Object.keys(fake.pushes[0]!.caps)).toEqual(['a']);
    expect(h.counted).toEqual({ ok: 2, error: 0, not_executed: 0 });
    expect(lastRecord()).toEqual({ pending: 0, error: null });
    state.snapshot = snapshot(4, { m1: 20, m2: 100 });
    await h.pass(4);
    expect(fake.pushes).toHaveLength(2);
    expect(fake.pushes[1]).toMatchObject({ complete: false, caps: {} });
    expect(fake.pushes[1]!.upstreams.t_a_web!.value.peers.map((p) => p.weight)).toEqual([20, 100]);
    expect(h.counted.ok).toBe(3);
    // The config is built too: the agent writes runtime-state.json for the next reload.
    expect(h.builds()).toBeGreaterThan(0);
    // Member health is read from the channel's stats after the push.
    expect(fake.statsReads).toBeGreaterThan(0);
  });

  it('removes the entries of a tenant that left the node once the node has applied a configuration without it', async () => {
    const fake = new FakeNode();
    const state = { snapshot: snapshot(3, { m1: 100 }, ['a', 'b']) };
    const h = harness(fake, state);
    await h.pass();
    state.snapshot = snapshot(5, { m1: 100 }, ['a']);
    await h.pass(5);
    // Its running config still serves b until the agent applies revision 5: b's entries stay.
    expect(fake.pushes).toHaveLength(1);
    expect([...fake.entries.keys()].sort()).toEqual(['caps a', 'caps b', 't_a_web', 't_b_web']);
    h.reconciler.update({ ...node, appliedRevision: 5 });
    await h.pass();
    expect(fake.pushes.at(-1)!.removed).toEqual({ upstreams: ['t_b_web'], caps: ['b'], revision: 5 });
    expect([...fake.entries.keys()].sort()).toEqual(['caps a', 't_a_web']);
  });

  it('records entries a full dictionary refused as failed and pending, and pushes them again on the retry', async () => {
    const fake = new FakeNode();
    fake.full.add('t_a_web');
    const state = { snapshot: snapshot(3, { m1: 100 }) };
    const h = harness(fake, state, true, 50);
    await h.pass();
    expect(h.counted).toEqual({ ok: 1, error: 1, not_executed: 0 });
    expect(lastRecord()).toEqual({ pending: 1, error: 't_a_web: sy_state is full' });
    fake.full.clear();
    // The failed pass is retried on its backoff timer.
    await expect.poll(() => fake.pushes.length).toBe(2);
    await h.reconciler.idle();
    expect(Object.keys(fake.pushes.at(-1)!.upstreams)).toEqual(['t_a_web']);
    expect(Object.keys(fake.pushes.at(-1)!.caps)).toEqual([]);
    expect(lastRecord()).toEqual({ pending: 0, error: null });
  });

  it('records a channel it cannot read as the pass failing, with the reason, and pushes nothing', async () => {
    const fake = new FakeNode();
    fake.down = 'nothing listens on tls:127.0.0.1:1 (connection refused)';
    const h = harness(fake, { snapshot: snapshot(3, { m1: 100 }) });
    await h.pass();
    expect(fake.pushes).toEqual([]);
    expect(lastRecord().error).toBe(
      "cannot read the node's runtime channel: nothing listens on tls:127.0.0.1:1 (connection refused)",
    );
    expect(h.builds()).toBe(1); // the agent still gets its config
  });

  it('without a runtime channel configured, an NGINX node is only built (every change by reload)', async () => {
    const fake = new FakeNode();
    const h = harness(fake, { snapshot: snapshot(3, { m1: 100 }) }, false);
    await h.pass();
    expect(fake.pushes).toEqual([]);
    expect(h.builds()).toBe(1);
    expect(statements.filter((s) => s.sql.startsWith('update "nodes"'))).toEqual([]);
  });
});
