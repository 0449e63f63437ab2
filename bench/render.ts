/**
 * `npm run bench:render`: renders 10,000 tenants (each 1 HTTP VIP, 1 pool with an HTTP check,
 * 3 members) for one HAProxy node, re-renders single tenants, and runs the real `haproxy -c` on
 * the same output. Prints one JSON line. Targets (issue 3): full render at most half of
 * `haproxy -c`'s time, one tenant's re-render under 5 ms.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { NodeSnapshot, TenantSnapshot } from '../src/domain/snapshot.js';
import { renderHaproxy, renderHaproxyTenant } from '../src/render/haproxy.js';
import { haproxyValidationDir } from '../src/render/validate-haproxy.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 10_000);
const COLD_RUNS = 5;
const TENANT_RUNS = 200;
const STAMP = { revision: 1, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };

function tenant(i: number): TenantSnapshot {
  const id = `tenant-${String(i).padStart(5, '0')}`;
  const octets = `${(i >> 8) & 0xff}.${i & 0xff}`;
  return {
    id,
    vips: [
      {
        name: 'web',
        address: `10.100.${octets}`,
        addressPool: null,
        port: 80,
        protocol: 'http',
        hostnames: [`${id}.example.com`],
        certificate: null,
        persistence: 'none',
        cookieName: 'SRVID',
        timeouts: { clientMs: 30_000, serverMs: 30_000, connectMs: 5000 },
        allowlist: [],
        defaultPool: 'app',
        routes: [],
        ...STAMP,
      },
    ],
    pools: [
      {
        name: 'app',
        algorithm: 'roundrobin',
        tls: null,
        ...STAMP,
        healthCheck: {
          type: 'http',
          path: '/healthz',
          expectedStatus: '200',
          host: null,
          port: null,
          intervalMs: 2000,
          timeoutMs: 1000,
          rise: 2,
          fall: 3,
        },
        members: [1, 2, 3].map((m) => ({
          name: `m${m}`,
          pool: 'app',
          address: `10.${100 + m}.${octets}`,
          port: 8080,
          weight: 100,
          state: 'enabled' as const,
          backup: false,
          ...STAMP,
        })),
      },
    ],
    certificates: [],
    allocation: { maxConnections: 1000, requestsPerSecond: 500 },
  };
}

function snapshot(configDir: string): NodeSnapshot {
  return {
    revision: 1,
    node: {
      name: 'bench',
      kind: 'haproxy',
      runtimeAddress: { host: '127.0.0.1', port: 9999 },
      capacity: { vcpu: 64, memoryMb: 262_144 },
      configDir,
    },
    tenants: Array.from({ length: TENANTS }, (_, i) => tenant(i)),
  };
}

function time<T>(run: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const result = run();
  return [result, Number(process.hrtime.bigint() - start) / 1e6];
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const round = (ms: number): number => Math.round(ms * 100) / 100;

async function main(): Promise<void> {
  const configDir = haproxyValidationDir();

  // Cold: every tenant object is new, so nothing is memoised.
  const cold: number[] = [];
  let files = renderHaproxy(snapshot(configDir));
  for (let i = 0; i < COLD_RUNS; i++) {
    const fresh = snapshot(configDir);
    [files, cold[i]] = time(() => renderHaproxy(fresh));
  }

  // One tenant changed: render its fragment alone, and the whole node with the others memoised.
  const base = snapshot(configDir);
  renderHaproxy(base);
  const fragmentMs: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < TENANT_RUNS; i++) {
    const index = (i * 7919) % TENANTS;
    const changed = { ...base.tenants[index]!, allocation: { maxConnections: 1000 + i, requestsPerSecond: 500 } };
    fragmentMs.push(time(() => renderHaproxyTenant(changed, configDir))[1]);
    const next = { ...base, tenants: base.tenants.map((t, j) => (j === index ? { ...changed } : t)) };
    nodeMs.push(time(() => renderHaproxy(next))[1]);
  }

  await mkdir(configDir, { mode: 0o700 });
  try {
    for (const [name, content] of Object.entries({ ...files, 'state/server-state': '1\n' })) {
      await mkdir(dirname(join(configDir, name)), { recursive: true });
      await writeFile(join(configDir, name), content);
    }
    const start = process.hrtime.bigint();
    const { stdout, stderr } = await promisify(execFile)('haproxy', ['-c', '-f', join(configDir, 'haproxy.cfg')], {
      maxBuffer: 64 << 20,
    });
    const checkMs = Number(process.hrtime.bigint() - start) / 1e6;
    const fullRenderMs = median(cold);
    console.log(
      JSON.stringify({
        bench: 'render',
        tenants: TENANTS,
        configBytes: files['haproxy.cfg']!.length,
        fullRenderMs: round(fullRenderMs),
        fullRenderRunsMs: cold.map(round),
        tenantRerenderMs: round(median(fragmentMs)),
        tenantRerenderP99Ms: round([...fragmentMs].sort((a, b) => a - b)[Math.floor(TENANT_RUNS * 0.99)]!),
        nodeRerenderOneTenantChangedMs: round(median(nodeMs)),
        haproxyCheckMs: round(checkMs),
        renderToCheckRatio: round(fullRenderMs / checkMs),
        checkOutput: `${stdout}${stderr}`.trim().split('\n').at(-1),
      }),
    );
  } finally {
    await rm(configDir, { recursive: true, force: true });
  }
}

await main();
