/**
 * `npm run bench:runtime-pass` — what one reconcile pass costs the control plane as a node grows,
 * against a real HAProxy: for each size in BENCH_SIZES (default 1000,5000,10000 tenants, each an
 * HTTP VIP on a loopback address of its own and a pool of 2 members), the node runs the rendered
 * files and BENCH_CHANGES (default 20) one-member weight changes are planned and pushed through
 * its Runtime API (a unix socket here: the mTLS front is measured by bench:runtime), timing:
 *  - desired: the runtime view of the snapshot (toHaproxyRuntime);
 *  - observe: reading the node (the pipelined batch and its parsing);
 *  - plan: comparing the two;
 *  - push: sending the planned commands;
 *  - health: the members' health from the observation (what the reconciler stores).
 * `full` passes read and compare the whole node, as every pass did; `scoped` passes read and
 * compare only the tenants that changed since the last pass (what the reconciler does for an
 * announced commit), side by side on the same process, so the curve of each is comparable.
 * Prints one JSON line: per size, the p50/p99 of each step and of the pass. Target: a scoped pass
 * at 10,000 tenants costs about what it costs at 1,000 (its p50 within 2×), the full pass grows.
 * Only 127.0.0.0/8; the HAProxy started here is stopped by its PID.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { memberHealth } from '../src/domain/member-health.js';
import { planRuntime } from '../src/domain/runtime-plan.js';
import type { NodeSnapshot, TenantSnapshot } from '../src/domain/snapshot.js';
import { observeCommands, observationTarget, readObservation } from '../src/fleet/observe-runtime.js';
import { commandBuilders } from '../src/fleet/runtime-api/commands/command-builders.js';
import { executeSendable } from '../src/fleet/runtime-api/execute-sendable.js';
import { RuntimeClient } from '../src/fleet/runtime-api/runtime-client.js';
import { changedTenants } from '../src/jobs/pass-scope.js';
import { renderHaproxy } from '../src/render/haproxy.js';
import { RuntimePlanner } from '../src/services/runtime-planner.js';
import { toHaproxyRuntime } from '../src/render/haproxy-runtime-view.js';
import { startHaproxy, type RunningHaproxy } from '../test/integration/haproxy-render-support.js';
import { poll } from '../test/support/poll.js';
import { round } from './support.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,5000,10000').split(',').map(Number);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 20);
const STAMP = { revision: 1, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };
const VIP_PORT = 28_443;

const log = (msg: string) => process.stderr.write(`bench:runtime-pass: ${msg}\n`);
const now = () => performance.now();
const pct = (xs: readonly number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN);
};

function tenant(i: number, weight = 100): TenantSnapshot {
  const id = `t${String(i).padStart(5, '0')}`;
  return {
    id,
    vips: [
      {
        name: 'www',
        address: `127.${100 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`,
        addressPool: null,
        port: VIP_PORT,
        protocol: 'http',
        hostnames: [],
        certificate: null,
        persistence: 'none',
        cookieName: 'SRVID',
        timeouts: { clientMs: 30_000, serverMs: 30_000, connectMs: 5000 },
        allowlist: [],
        defaultPool: 'web',
        routes: [],
        ...STAMP,
      },
    ],
    pools: [
      {
        name: 'web',
        algorithm: 'roundrobin',
        tls: null,
        healthCheck: null,
        ...STAMP,
        members: [1, 2].map((m) => ({
          name: `m${m}`,
          pool: 'web',
          address: '127.0.0.1',
          port: 9,
          weight: m === 1 ? weight : 100,
          state: 'enabled' as const,
          backup: false,
        })),
      },
    ],
    certificates: [],
    allocation: { maxConnections: 100, requestsPerSecond: 100 },
  };
}

interface Steps {
  desired: number;
  observe: number;
  plan: number;
  push: number;
  health: number;
  pass: number;
  commands: number;
}

async function runSize(size: number): Promise<Record<string, unknown>> {
  const configDir = join(tmpdir(), `sy-bench-pass-${process.pid}-${size}`);
  await rm(configDir, { recursive: true, force: true });
  const base: NodeSnapshot = {
    revision: 1,
    node: {
      name: 'bench',
      kind: 'haproxy',
      runtimeAddress: { host: '127.0.0.1', port: 1 },
      socketDir: configDir,
      capacity: { vcpu: 64, memoryMb: 262_144 },
      configDir,
    },
    tenants: Array.from({ length: size }, (_, i) => tenant(i)),
  };
  const files = renderHaproxy(base);
  for (const [name, content] of Object.entries({ ...files, 'state/server-state': '1\n' })) {
    await mkdir(dirname(join(configDir, name)), { recursive: true });
    await writeFile(join(configDir, name), content);
  }
  let haproxy: RunningHaproxy | undefined;
  const client = new RuntimeClient({ path: join(configDir, 'admin.sock') });
  try {
    log(`${size} tenants: starting haproxy`);
    haproxy = startHaproxy(join(configDir, 'haproxy.cfg'));
    await poll(
      async () =>
        (await client.execute(observeCommands(observationTarget(toHaproxyRuntime(base)))))[0]?.status === 'ok'
          ? true
          : undefined,
      { timeout: 120_000, interval: 200 },
    ).catch((error: unknown) => {
      throw new Error(`haproxy with ${size} tenants did not answer: ${String(error)}\n${haproxy?.output()}`);
    });
    const planner = new RuntimePlanner({ client: () => client }, { drainTimeoutMs: 30_000, observeTimeoutMs: 30_000 });
    const full: Steps[] = [];
    const scoped: Steps[] = [];
    let snapshot = base;
    // Alternating, so both kinds of pass meet the same node in the same state of the machine.
    for (let c = 0; c < 2 * CHANGES; c++) {
      const index = (c * 7919) % size;
      const before = snapshot;
      const tenants = snapshot.tenants.map((t, i) => (i === index ? tenant(i, 10 + c) : t));
      snapshot = { ...snapshot, revision: snapshot.revision + 1, tenants };
      if (c % 2 === 0) full.push(await fullPass(client, snapshot));
      else scoped.push(await scopedPass(planner, before, snapshot));
    }
    const summary = (steps: Steps[]) =>
      Object.fromEntries(
        (['desired', 'observe', 'plan', 'push', 'health', 'pass'] as const).map((k) => [
          k,
          {
            p50: pct(
              steps.map((s) => s[k]),
              50,
            ),
            p99: pct(
              steps.map((s) => s[k]),
              99,
            ),
          },
        ]),
      );
    const commands = [...full, ...scoped].map((s) => s.commands);
    const p50 = (steps: Steps[]) =>
      pct(
        steps.map((s) => s.pass),
        50,
      );
    log(`${size} tenants: full pass p50 ${p50(full)} ms, scoped pass p50 ${p50(scoped)} ms`);
    return { tenants: size, full: summary(full), scoped: summary(scoped), commandsPerChange: Math.max(...commands) };
  } finally {
    await client.close();
    await haproxy?.stop();
    await rm(configDir, { recursive: true, force: true });
  }
}

/**
 * A pass as the reconciler makes it for an announced commit: only the tenants that changed since
 * `before` are read and compared (RuntimePlanner with a scope). `desired` and `observe` are not
 * told apart here (the planner does both); `plan` holds them and the comparison.
 */
async function scopedPass(planner: RuntimePlanner, before: NodeSnapshot, snapshot: NodeSnapshot): Promise<Steps> {
  const t0 = now();
  const scope = changedTenants(before, snapshot);
  if (scope === 'whole') throw new Error('one changed tenant made a whole pass');
  const { desired, observation, plan } = await planner.plan('bench', { host: '127.0.0.1', port: 1 }, snapshot, {
    scope,
  });
  if (!observation.ok || plan === null)
    throw new Error(`observation failed: ${observation.ok ? 'no plan' : observation.error}`);
  const t3 = now();
  const results =
    plan.commands.length === 0
      ? []
      : await executeSendable(planner.executor('bench', { host: '127.0.0.1', port: 1 }), plan.commands);
  const failed = results.filter((r) => r.status !== 'ok');
  if (failed.length > 0) throw new Error(`push failed: ${JSON.stringify(failed[0])}`);
  const t4 = now();
  memberHealth(desired, observation.observed);
  const t5 = now();
  return {
    desired: 0,
    observe: 0,
    plan: t3 - t0,
    push: t4 - t3,
    health: t5 - t4,
    pass: t5 - t0,
    commands: plan.commands.length,
  };
}

/** A pass as every pass was: the whole node read and compared. */
async function fullPass(client: RuntimeClient, snapshot: NodeSnapshot): Promise<Steps> {
  const t0 = now();
  const desired = toHaproxyRuntime(snapshot);
  const t1 = now();
  const target = observationTarget(desired);
  const observation = readObservation(target, await client.execute(observeCommands(target)));
  if (!observation.ok) throw new Error(`observation failed: ${observation.error}`);
  const t2 = now();
  const plan = planRuntime(desired, observation.observed, commandBuilders, { drainTimeoutMs: 30_000 });
  const t3 = now();
  const results = plan.commands.length === 0 ? [] : await executeSendable(client, plan.commands);
  const failed = results.filter((r) => r.status !== 'ok');
  if (failed.length > 0) throw new Error(`push failed: ${JSON.stringify(failed[0])}`);
  const t4 = now();
  memberHealth(desired, observation.observed);
  const t5 = now();
  return {
    desired: t1 - t0,
    observe: t2 - t1,
    plan: t3 - t2,
    push: t4 - t3,
    health: t5 - t4,
    pass: t5 - t0,
    commands: plan.commands.length,
  };
}

const rows: Record<string, unknown>[] = [];
for (const size of SIZES) rows.push(await runSize(size));
console.log(JSON.stringify({ bench: 'runtime-pass', changes: CHANGES, sizes: rows }));
