import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/domain/errors.js';
import type { NginxCaps, NginxUpstream, StatePush, Versioned } from '../../src/domain/nginx-runtime.js';
import type { NodeSnapshot, RenderedFiles } from '../../src/domain/snapshot.js';
import { renderNginx } from '../../src/render/nginx.js';
import { validateNginx } from '../../src/render/validate-nginx.js';
import { mulberry32, randomSnapshot, shuffleDeep } from '../fixtures/random-snapshot.js';
import { type ChannelClientTls, channelRequest, LuaNginx } from '../support/nginx-lua-harness.js';
import { TestPki } from '../support/openssl.js';
import { assertAsyncProperty, halving } from '../support/property.js';
import { freePort } from './haproxy-render-support.js';

/**
 * Thousands of random valid snapshots (every object passes the API's create schemas), each
 * rendered twice (as given and with every array shuffled: the bytes must be equal) and proven
 * by the real `nginx -t`, and its runtime-state.jsonl taken whole by the Lua module on a real node
 * (`nginx -t` does not run Lua: init_by_lua is skipped, so only the module's own check can say the
 * entries load; one it refused would leave every upstream of a starting node without an entry).
 * nginx takes a few hundred milliseconds to start, so snapshots are
 * checked in batches: a batch is one node holding the tenants of many snapshots, renamed apart.
 * A failing batch is halved down to the snapshots that fail (one `nginx -t` a step); the report
 * names the seed and the command that replays it (test/support/property.ts).
 */
const BATCHES = 8;
const PER_BATCH = 250;
const SNAPSHOTS = BATCHES * PER_BATCH;
/** nginx -t took 10-30 s per batch on a shared 2-core machine (measured), with or without TLS pools. */
const PROPERTY_TIMEOUT_MS = 600_000;
const CONFIG_DIR = '/var/lib/switchyard/nginx';

interface Case {
  readonly seed: number;
  readonly snapshot: NodeSnapshot;
}

/**
 * Snapshot i of a batch: tenant ids of one snapshot are unique, and a per-snapshot prefix keeps
 * them unique in the batch. Listeners are random over all of IPv4/IPv6 and every port, so a
 * clash between two snapshots is vanishingly rare; the renderer would refuse it by name.
 */
function generate(seed: number, index: number): Case {
  const rng = mulberry32(seed);
  const snapshot = randomSnapshot(rng, 'nginx', CONFIG_DIR, 1 + Math.floor(rng() * 2));
  const tenants = snapshot.tenants.map((t) => ({ ...t, id: `s${index}-${t.id}`.slice(0, 63) }));
  return { seed, snapshot: { ...snapshot, tenants } };
}

const batches = halving<readonly Case[]>(
  (seed) => Array.from({ length: PER_BATCH }, (_, i) => generate(seed + i, i)),
  (batch) =>
    batch.length < 2 ? [] : [batch.slice(0, Math.ceil(batch.length / 2)), batch.slice(Math.ceil(batch.length / 2))],
  (batch) =>
    batch.length <= 3
      ? JSON.stringify(batch)
      : `${batch.length} snapshots, seeds ${batch[0]!.seed}..${batch.at(-1)!.seed}`,
);

/** The batch reuses the tenant objects just rendered, so their fragments come from the cache. */
function merge(cases: readonly Case[]): NodeSnapshot {
  return { ...cases[0]!.snapshot, tenants: cases.flatMap((c) => c.snapshot.tenants) };
}

/**
 * The schemas accept any IP literal, but nothing can listen on an IPv6 link-local or multicast
 * address; the renderer refuses such a VIP by name (a ValidationError), which is the right outcome.
 */
function renderOrSkip(c: Case): RenderedFiles | null {
  try {
    return renderNginx(c.snapshot);
  } catch (err) {
    if (err instanceof ValidationError && err.message.includes('no proxy can listen on it')) return null;
    throw err;
  }
}

/**
 * runtime-state.jsonl as the push the module makes of it when it loads the file (state.lua's
 * decode_file): the header's `complete` and `revision`, each entry at that revision.
 */
function statePush(jsonl: string): StatePush {
  const [header, ...lines] = jsonl.trimEnd().split('\n');
  const { complete, revision } = JSON.parse(header!) as { complete: boolean; revision: number };
  const upstreams: Record<string, Versioned<NginxUpstream>> = {};
  const caps: Record<string, Versioned<NginxCaps>> = {};
  for (const line of lines) {
    const entry = JSON.parse(line) as { upstream?: string; caps?: string; hash: string; value: never };
    const versioned = { revision, hash: entry.hash, value: entry.value };
    if (entry.upstream !== undefined) upstreams[entry.upstream] = versioned;
    else caps[entry.caps!] = versioned;
  }
  return { complete, revision, upstreams, caps };
}

/** A node with the Lua module and its runtime channel, which takes each batch's state whole. */
let pki: TestPki;
let node: LuaNginx;
let channel: { host: string; port: number };
let client: ChannelClientTls;

beforeAll(async () => {
  pki = await TestPki.create();
  const ca = await pki.root('Switchyard Control Plane CA');
  const cert = await pki.issue('edge-property', ca, { sans: ['IP:127.0.0.1'] });
  const controlPlane = await pki.issue('switchyard-control-plane', ca);
  client = { ca: ca.cert, cert: controlPlane.cert, key: controlPlane.key };
  channel = { host: '127.0.0.1', port: await freePort('127.0.0.1') };
  node = await LuaNginx.start({
    http: '',
    channel: { ...channel, tls: { certPath: cert.certPath, keyPath: cert.keyPath, clientCaPath: ca.certPath } },
  });
});

afterAll(async () => {
  await node?.remove();
  await pki?.dispose();
});

describe('random valid snapshots', () => {
  it(
    `${SNAPSHOTS} random snapshots render deterministically, pass nginx -t without a warning, and their runtime state loads whole`,
    async () => {
      let tenants = 0;
      let unbindable = 0;
      await assertAsyncProperty(
        fc.asyncProperty(batches, async (batch) => {
          const renderable: Case[] = [];
          for (const c of batch) {
            const files = renderOrSkip(c);
            if (files === null) {
              unbindable++;
              continue;
            }
            expect(
              renderNginx(shuffleDeep(c.snapshot, mulberry32(c.seed))),
              `seed ${c.seed}: shuffled input renders the same bytes`,
            ).toEqual(files);
            renderable.push(c);
            tenants += c.snapshot.tenants.length;
          }
          if (renderable.length === 0) return;
          const files = renderNginx(merge(renderable));
          const result = await validateNginx(files, CONFIG_DIR);
          expect(result.ok, result.ok ? '' : `nginx -t failed:\n${result.message.slice(0, 2000)}`).toBe(true);
          if (result.ok) expect(result.warnings.slice(0, 5), 'nginx -t warned').toEqual([]);
          const push = statePush(files['runtime-state.jsonl']!);
          const entries = Object.keys(push.upstreams).length + Object.keys(push.caps).length;
          const loaded = await channelRequest(channel, client, 'POST', '/switchyard/v1/state', push);
          expect(loaded.status, `the module refused the state: ${loaded.text.slice(0, 2000)}`).toBe(200);
          expect(loaded.body, 'the module stored every entry').toEqual({ applied: entries, stale: [], failed: [] });
        }),
        BATCHES,
      );
      // Only when every batch passed (no halving ran): the generator covers what it should.
      expect(tenants).toBeGreaterThan(SNAPSHOTS);
      expect(unbindable).toBeLessThan(SNAPSHOTS / 20);
    },
    PROPERTY_TIMEOUT_MS,
  );
});
