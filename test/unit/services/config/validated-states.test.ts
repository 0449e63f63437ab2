import { describe, expect, it } from 'vitest';
import { ValidatedStates } from '../../../../src/services/config/validated-states.js';
import { seedTenantStates } from '../../../fixtures/seed-tenant-states.js';

describe('ValidatedStates', () => {
  it('answers only for the hash it was given, per kind, and drops what the database no longer names', () => {
    const cache = new ValidatedStates();
    const [a, b] = seedTenantStates();
    cache.remember('haproxy', 'a', 'h1', a!);
    cache.remember('haproxy', 'b', 'h2', b!);
    cache.remember('nginx', 'a', 'h1', a!);
    expect(cache.get('haproxy', 'a', 'h1')).toBe(a);
    expect(cache.get('haproxy', 'a', 'other')).toBeUndefined();
    cache.retain(
      'haproxy',
      new Map([
        ['a', { goodHash: 'h1' }],
        ['b', { goodHash: 'h3' }],
      ]),
    );
    expect(cache.get('haproxy', 'a', 'h1')).toBe(a);
    expect(cache.get('haproxy', 'b', 'h2')).toBeUndefined();
    expect(cache.get('nginx', 'a', 'h1')).toBe(a);
  });
});
