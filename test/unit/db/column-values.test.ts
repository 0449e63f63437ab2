import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { iso } from '../../../src/db/column-values.js';
import { assertProperty } from '../../support/property.js';

describe('iso', () => {
  it('cuts PostgreSQL UTC timestamps to what Date prints, without parsing them', () => {
    const cases = [
      '2026-11-26T16:49:49.062252+00:00',
      '2026-11-26T16:49:49+00:00',
      '2026-11-26T16:49:49.5+00:00',
      '2026-11-26T23:59:59.999999+00:00',
      '1999-01-01T00:00:00.0009+00:00',
    ];
    for (const text of cases) expect(iso(text), text).toBe(new Date(text).toISOString());
  });

  it('property: any UTC timestamp PostgreSQL prints, with 0 to 6 fraction digits, cuts to what Date prints', () => {
    const timestamps = fc
      .record({
        ms: fc.integer({ min: 0, max: 4e12 }),
        micros: fc.integer({ min: 0, max: 999 }),
        digits: fc.integer({ min: 0, max: 6 }),
      })
      .map(({ ms, micros, digits }) => {
        const fraction = `${String(ms % 1000).padStart(3, '0')}${String(micros).padStart(3, '0')}`.slice(0, digits);
        return `${new Date(ms).toISOString().slice(0, 19)}${digits === 0 ? '' : `.${fraction}`}+00:00`;
      });
    assertProperty(
      fc.property(timestamps, (text) => {
        expect(iso(text), text).toBe(new Date(text).toISOString());
      }),
      2000,
    );
  });

  it('takes anything else through Date', () => {
    expect(iso('2026-11-26 16:49:49.062+02')).toBe('2026-11-26T14:49:49.062Z');
    expect(iso(new Date(0))).toBe('1970-01-01T00:00:00.000Z');
    expect(() => iso('not a date')).toThrow(RangeError);
  });
});
