import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SegmentedFiles } from '../../../../src/domain/snapshot.js';
import { ConfigStore } from '../../../../src/services/config/config-store.js';
import { offlineDb } from '../../../support/offline-db.js';

/**
 * The segment store's content hash, which reads no database. What the store writes, opens and
 * sweeps is tested over a real database in test/integration/config-store.test.ts.
 */

const KEY = randomBytes(32);
const db = offlineDb();
const store = new ConfigStore(db, KEY);

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

describe('ConfigStore.contentHash', () => {
  it('is equal for equal segments (also from another store with the same key, and for equal strings built afresh)', () => {
    const files = config(50);
    const copy = Object.fromEntries(
      Object.entries(files).map(([name, parts]) => [name, parts.map((p) => Buffer.from(p).toString())]),
    );
    const hash = store.contentHash(files);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(store.contentHash(copy)).toBe(hash);
    expect(new ConfigStore(db, KEY).contentHash(files)).toBe(hash);
  });

  it('changes when one segment changes, when segments swap places, or when a file is renamed', () => {
    const files = config(50);
    const hash = store.contentHash(files);
    expect(store.contentHash(config(50, { tenant: 17, variant: 1 }))).not.toBe(hash);
    const swapped = [...files['haproxy.cfg']!];
    [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
    expect(store.contentHash({ ...files, 'haproxy.cfg': swapped })).not.toBe(hash);
    expect(
      store.contentHash({ 'haproxy.cfg': files['haproxy.cfg']!, 'maps/other.map': files['maps/hosts.map']! }),
    ).not.toBe(hash);
  });

  it('is defined over segments: the same bytes split differently hash differently', () => {
    const files = config(5);
    const whole = { ...files, 'haproxy.cfg': [files['haproxy.cfg']!.join('')] };
    expect(joined(whole)).toEqual(joined(files));
    expect(store.contentHash(whole)).not.toBe(store.contentHash(files));
  });

  it('depends on the secret key (digests are keyed)', () => {
    expect(new ConfigStore(db, randomBytes(32)).contentHash(config(5))).not.toBe(store.contentHash(config(5)));
  });
});
