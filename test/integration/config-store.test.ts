import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { insertConfigVersion, latestConfigVersion, type StoredConfigVersion } from '../../src/db/config-repository.js';
import type { Db } from '../../src/db/connect.js';
import { insertNode } from '../../src/db/node-repository.js';
import { decodeManifest } from '../../src/services/config/config-manifest.js';
import { ConfigStore } from '../../src/services/config/config-store.js';
import type { SegmentedFiles } from '../../src/domain/snapshot.js';
import { SecretBox } from '../../src/services/secret-box.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * The segment store over a real database: what it stores, what it skips, what it opens and sweeps.
 * Its content hash, which needs no database, is tested in test/unit/services/config-store.test.ts.
 */

const KEY = randomBytes(32);
let database: TestDatabase;
let db: Db;
let store: ConfigStore;

/** A tenant's part of a config, distinct per tenant and per `variant`. */
const tenantPart = (tenant: number, variant = 0) =>
  `backend be_t${tenant}_web\n  balance roundrobin\n  server m1 10.0.${tenant % 250}.${variant + 1}:8080 check\n`;

function config(tenants: number, changed?: { tenant: number; variant: number }): Record<string, string[]> {
  const parts = Array.from({ length: tenants }, (_, t) => tenantPart(t, changed?.tenant === t ? changed.variant : 0));
  return {
    'haproxy.cfg': ['global\n  maxconn 1000\n', ...parts],
    'maps/hosts.map': ['a.example 1\n', 'b.example 2\n'],
  };
}

const joined = (files: SegmentedFiles) =>
  Object.fromEntries(Object.entries(files).map(([name, parts]) => [name, parts.join('')]));

async function segmentCount(): Promise<number> {
  const row = await db
    .selectFrom('config_segments')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Chunks of digests are base64, structural parts chunks JSON lists: no config part here looks like either. */
async function chunkCount(): Promise<number> {
  const { rows } = await sql<{
    n: string;
  }>`select count(*) as n from config_segments where content ~ '^[A-Za-z0-9+/]+=*$' or content like '[[%'`.execute(db);
  return Number(rows[0]!.n);
}
const partCount = async () => (await segmentCount()) - (await chunkCount());

/** The distinct chunks a stored version's manifest names. */
function chunksOf(v: StoredConfigVersion): Set<string> {
  const decoded = decodeManifest(v.manifest!);
  if (!decoded.chunked) throw new Error('expected a chunked manifest');
  return new Set(decoded.files.flatMap((f) => f.chunks));
}

async function store1(
  nodeName: string,
  files: SegmentedFiles,
  previous?: StoredConfigVersion,
  using = store,
): Promise<StoredConfigVersion> {
  await db.transaction().execute((trx) =>
    using.insert(trx, {
      nodeName,
      revision: 1,
      contentHash: using.contentHash(files, nodeName),
      structuralHash: 's'.repeat(64),
      structuralParts: {},
      files,
      heldTenants: [],
      previous,
    }),
  );
  return (await latestConfigVersion(db, nodeName))!;
}

let nodeCount = 0;
async function newNode(): Promise<string> {
  const name = `edge-${++nodeCount}`;
  await insertNode(
    db,
    {
      name,
      kind: 'haproxy',
      group: 'default',
      zone: 'z1',
      runtimeAddress: null,
      capacity: { vcpu: 1, memoryMb: 512 },
      configDir: '/etc/x',
    },
    1,
  );
  return name;
}

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.handle.db;
  store = new ConfigStore(db, KEY);
});
afterAll(async () => {
  await database?.drop();
});

describe('ConfigStore.insert and open', () => {
  it("when one tenant changes, then the second version stores only that tenant's segment, and both open as their joined files", async () => {
    const node = await newNode();
    const before = await partCount();
    const chunksBefore = await chunkCount();
    const first = config(200);
    const v1 = await store1(node, first);
    // 201 parts of haproxy.cfg and 2 of the map, and the chunks listing them (about 64 a chunk).
    expect((await partCount()) - before).toBe(203);
    expect((await chunkCount()) - chunksBefore).toBe(chunksOf(v1).size);
    expect(chunksOf(v1).size).toBeGreaterThanOrEqual(2);
    expect(v1.manifest).not.toBeNull();
    expect(v1.filesSealed).toBeNull();
    expect(v1.contentHash).toBe(store.contentHash(first));

    const second = config(200, { tenant: 120, variant: 1 });
    const v2 = await store1(node, second, v1);
    expect((await partCount()) - before).toBe(204);
    // Only the chunk holding the changed part is new (two when the change moved a boundary).
    const newChunks = [...chunksOf(v2)].filter((c) => !chunksOf(v1).has(c));
    expect(newChunks.length).toBeGreaterThanOrEqual(1);
    expect(newChunks.length).toBeLessThanOrEqual(2);
    expect((await chunkCount()) - chunksBefore).toBe(chunksOf(v1).size + newChunks.length);
    expect(v2.contentHash).toBe(store.contentHash(second));

    expect(await store.open(v1)).toEqual(joined(first));
    expect(await store.open(v2)).toEqual(joined(second));
    const fresh = new ConfigStore(db, KEY);
    expect(await fresh.open(v2)).toEqual(joined(second));
    expect(await fresh.open(v1)).toEqual(joined(first));
  });

  it('stores a segment that appears twice, or in two files, once', async () => {
    const node = await newNode();
    const before = await partCount();
    const files = { 'a.cfg': ['same\n', 'same\n', `only ${node}\n`], 'b.cfg': ['same\n'] };
    const v = await store1(node, files);
    expect((await partCount()) - before).toBe(2);
    expect(await new ConfigStore(db, KEY).open(v)).toEqual(joined(files));
  });

  it('when a segment holds a private key, then it is stored sealed and opens as it was', async () => {
    const node = await newNode();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const body = pem.split('\n')[1]!;
    const files = {
      'certs/t1-web.pem': [`-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n${pem}`],
      'haproxy.cfg': [tenantPart(1)],
    };
    const v = await store1(node, files);

    const rows = await db.selectFrom('config_segments').select(['content', 'sealed']).execute();
    const sealed = rows.filter((r) => r.sealed);
    expect(sealed).toHaveLength(1);
    expect(sealed[0]!.content.startsWith('v1:')).toBe(true);
    expect(rows.some((r) => r.content.includes(body))).toBe(false);
    expect(rows.some((r) => r.content === tenantPart(1) && !r.sealed)).toBe(true);

    expect(await new ConfigStore(db, KEY).open(v)).toEqual(joined(files));
  });

  it('when a stored plain segment is altered, then opening a version that uses it fails instead of serving it', async () => {
    const node = await newNode();
    const files = { 'haproxy.cfg': [`backend be_${node}\n  server m1 10.9.9.9:80\n`] };
    const v = await store1(node, files);
    await db
      .updateTable('config_segments')
      .set({ content: `backend be_${node}\n  server m1 10.6.6.6:80\n` })
      .where('content', '=', files['haproxy.cfg'][0]!)
      .execute();
    await expect(new ConfigStore(db, KEY).open(v)).rejects.toThrow(/does not match its digest/);
  });

  it('when a segment a version names is not stored, then opening it fails and says so', async () => {
    const node = await newNode();
    const files = { 'haproxy.cfg': [`backend be_${node}\n`, `# gone ${node}\n`] };
    const v = await store1(node, files);
    await db.deleteFrom('config_segments').where('content', '=', `# gone ${node}\n`).execute();
    await expect(new ConfigStore(db, KEY).open(v)).rejects.toThrow(/references 1 segments that are not stored/);
  });

  it('opens a version stored the old way (all files sealed as one)', async () => {
    const node = await newNode();
    const files = { 'haproxy.cfg': 'global\n', 'maps/hosts.map': 'a.example 1\n' };
    await insertConfigVersion(db, {
      nodeName: node,
      revision: 1,
      contentHash: 'c'.repeat(64),
      structuralHash: 's'.repeat(64),
      filesSealed: new SecretBox(KEY).seal(JSON.stringify(files), `config:${node}`),
      fileNames: Object.keys(files).sort(),
      heldTenants: [],
    });
    const old = (await latestConfigVersion(db, node))!;
    expect(old.manifest).toBeNull();
    expect(await new ConfigStore(db, KEY).open(old)).toEqual(files);

    // The next version after an old one stores all its segments: the old row references none.
    const before = await partCount();
    const next = { 'haproxy.cfg': [`# ${node}\n`, `frontend fe_${node}\n`] };
    const v = await store1(node, next, old);
    expect((await partCount()) - before).toBe(2);
    expect(await new ConfigStore(db, KEY).open(v)).toEqual(joined(next));
  });

  it('keeps only the most recently opened versions in memory', async () => {
    const node = await newNode();
    const small = new ConfigStore(db, KEY, { maxCachedVersions: 1 });
    const v1 = await store1(node, { 'a.cfg': [`one ${node}\n`] }, undefined, small);
    const first = await small.open(v1);
    expect(await small.open(v1)).toBe(first);
    const v2 = await store1(node, { 'a.cfg': [`two ${node}\n`] }, v1, small);
    await small.open(v2);
    expect(await small.open(v1)).not.toBe(first);
    expect(await small.open(v1)).toEqual(first);
  });
});

describe('ConfigStore.insert after the version it stored last', () => {
  /** A deterministic generator, so that a failure replays the same edits. */
  function random(seed: number): () => number {
    let x = seed >>> 0;
    return () => {
      x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
      return (x >>> 8) / 0x1000000;
    };
  }

  it('when tenants are added, changed and removed in turn, then every version names the same chunks as one stored from scratch and opens as its files', async () => {
    const incremental = await newNode();
    const next = random(12);
    let serial = 0;
    const part = () => `backend be_${++serial}_web\n  server m1 10.1.${serial % 250}.1:80\n`;
    let parts = Array.from({ length: 400 }, part);
    let previous: StoredConfigVersion | undefined;
    for (let round = 0; round < 25; round++) {
      parts = parts.slice();
      const edits = 1 + Math.floor(next() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(next() * parts.length);
        const what = next();
        if (what < 0.4) parts[at] = part();
        else if (what < 0.7) parts.splice(at, 0, part());
        else if (parts.length > 1) parts.splice(at, 1);
      }
      const files = { 'haproxy.cfg': ['global\n', ...parts], 'maps/tenant-caps.map': parts.map((p) => p.slice(0, 20)) };
      previous = await store1(incremental, files, previous);
      // The same files stored by a store that never saw this node: its chunks are cut from scratch.
      const scratch = await store1(await newNode(), files, undefined, new ConfigStore(db, KEY));
      expect(decodeManifest(previous.manifest!), `round ${round}`).toEqual(decodeManifest(scratch.manifest!));
      expect(previous.contentHash).toBe(scratch.contentHash);
      expect(await new ConfigStore(db, KEY).open(previous)).toEqual(joined(files));
    }
  });

  it("when one tenant is added in the middle, then it stores that tenant's segment and at most two chunks per file", async () => {
    const node = await newNode();
    const v1 = await store1(node, config(300));
    const before = await partCount();
    const chunksBefore = await chunkCount();
    const files = config(300);
    files['haproxy.cfg']!.splice(150, 0, `backend be_${node}_new\n`);
    const v2 = await store1(node, files, v1);
    expect((await partCount()) - before).toBe(1);
    expect((await chunkCount()) - chunksBefore).toBeLessThanOrEqual(2);
    expect(await new ConfigStore(db, KEY).open(v2)).toEqual(joined(files));
  });
});

describe('ConfigStore.sweep', () => {
  it('deletes the segments no stored version references and keeps every other', async () => {
    const node = await newNode();
    const a = { 'haproxy.cfg': [`shared ${node}\n`, `only in a ${node}\n`] };
    const b = { 'haproxy.cfg': [`shared ${node}\n`, `only in b ${node}\n`] };
    const va = await store1(node, a);
    const vb = await store1(node, b, va);
    await store.sweep(); // whatever earlier tests left unreferenced
    const before = await segmentCount();

    await db.deleteFrom('config_versions').where(sql<boolean>`id = ${va.id}`).execute();
    // Its own part and its chunk of digests (vb's lists another digest).
    expect(await store.sweep()).toBe(2);
    expect(await segmentCount()).toBe(before - 2);
    const left = await db
      .selectFrom('config_segments')
      .select('content')
      .where('content', 'like', `%${node}%`)
      .execute();
    expect(left.map((r) => r.content).sort()).toEqual([`only in b ${node}\n`, `shared ${node}\n`]);
    expect(await new ConfigStore(db, KEY).open(vb)).toEqual(joined(b));
    expect(await store.sweep()).toBe(0);
  });

  it('when the previous version was pruned and swept, then the next insert stores the segments it had skipped', async () => {
    const node = await newNode();
    const parts = Array.from({ length: 20 }, (_, t) => `# ${node}\n${tenantPart(t)}`);
    const files = { 'haproxy.cfg': parts };
    const v1 = await store1(node, files);
    await store.sweep(); // whatever earlier tests left unreferenced
    await db.deleteFrom('config_versions').where(sql<boolean>`id = ${v1.id}`).execute();
    expect(await store.sweep()).toBe(20 + chunksOf(v1).size);
    const next = { 'haproxy.cfg': parts.map((p, t) => (t === 3 ? `${p}# changed\n` : p)) };
    const v2 = await store1(node, next, v1);
    expect(await new ConfigStore(db, KEY).open(v2)).toEqual(joined(next));
  });

  it('waits for an insert in flight and keeps the segments it relies on', async () => {
    const node = await newNode();
    const files = { 'haproxy.cfg': [`kept ${node}\n`, `dropped ${node}\n`] };
    const v1 = await store1(node, files);
    await store.sweep(); // whatever earlier tests left unreferenced
    await db.deleteFrom('config_versions').where(sql<boolean>`id = ${v1.id}`).execute();

    // An insert whose transaction is still open: its new version names `kept`, stored by v1 and unreferenced now.
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    let inserted!: () => void;
    const insertDone = new Promise<void>((resolve) => (inserted = resolve));
    const next = { 'haproxy.cfg': [`kept ${node}\n`, `new ${node}\n`] };
    const transaction = db.transaction().execute(async (trx) => {
      await store.insert(trx, {
        nodeName: node,
        revision: 2,
        contentHash: store.contentHash(next),
        structuralHash: 's'.repeat(64),
        structuralParts: {},
        files: next,
        heldTenants: [],
      });
      inserted();
      await committed;
    });
    await insertDone;
    const sweeping = store.sweep();
    await vi.waitFor(async () => {
      const { rows } = await sql<{ n: string }>`select count(*) as n from pg_locks
        where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`.execute(
        db,
      );
      expect(Number(rows[0]!.n)).toBe(1);
    });
    commit();
    await transaction;
    const v2 = (await latestConfigVersion(db, node))!;
    // `dropped` and v1's chunk listing it.
    expect(await sweeping).toBe(1 + [...chunksOf(v1)].filter((c) => !chunksOf(v2).has(c)).length);
    expect(await new ConfigStore(db, KEY).open(v2)).toEqual(joined(next));
  });
});

describe('structural parts', () => {
  const parts = (tenants: number, changed?: number) =>
    Object.fromEntries(
      Array.from({ length: tenants }, (_, t) => [`vip t${t}/www`, (t === changed ? 'f' : '0').repeat(16)]),
    );

  it('are stored as chunks, open as they were, and a changed part adds one chunk (two when it moves a boundary)', async () => {
    const node = await newNode();
    const files = { 'haproxy.cfg': [`global ${node}\n`] };
    const insert = (structuralParts: Record<string, string>, previous?: StoredConfigVersion) =>
      db.transaction().execute((trx) =>
        store.insert(trx, {
          nodeName: node,
          revision: 1,
          contentHash: 'c'.repeat(64),
          structuralHash: 's'.repeat(64),
          structuralParts,
          files,
          heldTenants: [],
          previous,
        }),
      );
    await insert(parts(1_000));
    const v1 = (await latestConfigVersion(db, node))!;
    const row1 = await db
      .selectFrom('config_versions')
      .select(['structure_chunks', 'structural_parts'])
      .where(sql<boolean>`id = ${v1.id}`)
      .executeTakeFirstOrThrow();
    expect(row1.structural_parts).toEqual({});
    expect(await new ConfigStore(db, KEY).openStructure(row1.structure_chunks!)).toEqual(parts(1_000));

    const before = await chunkCount();
    await insert(parts(1_000, 500), v1);
    const v2 = (await latestConfigVersion(db, node))!;
    const row2 = await db
      .selectFrom('config_versions')
      .select('structure_chunks')
      .where(sql<boolean>`id = ${v2.id}`)
      .executeTakeFirstOrThrow();
    expect(await new ConfigStore(db, KEY).openStructure(row2.structure_chunks!)).toEqual(parts(1_000, 500));
    const added = (await chunkCount()) - before;
    expect(added).toBeGreaterThanOrEqual(1);
    expect(added).toBeLessThanOrEqual(2);

    // The sweep keeps what a kept version's structure names.
    await store.sweep();
    expect(await new ConfigStore(db, KEY).openStructure(row2.structure_chunks!)).toEqual(parts(1_000, 500));
  });
});
