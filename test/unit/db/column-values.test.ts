import { describe, expect, it } from 'vitest';
import { iso } from '../../../src/db/column-values.js';

describe('iso', () => {
  it('cuts PostgreSQL UTC timestamps to what Date prints, without parsing them', () => {
    const cases = [
      '2026-11-26T16:49:49.062252+00:00', '2026-11-26T16:49:49+00:00', '2026-11-26T16:49:49.5+00:00',
      '2026-11-26T23:59:59.999999+00:00', '1999-01-01T00:00:00.0009+00:00',
    ];
    for (const text of cases) expect(iso(text), text).toBe(new Date(text).toISOString());
    for (let i = 0; i < 2000; i++) {
      const ms = Math.floor(Math.random() * 4e12);
      const text = `${new Date(ms).toISOString().slice(0, 19)}.${String(ms % 1000).padStart(3, '0')}${String(i % 1000).padStart(3, '0').slice(0, i % 4)}+00:00`;
      expect(iso(text), text).toBe(new Date(text).toISOString());
    }
  });

  it('takes anything else through Date', () => {
    expect(iso('2026-11-26 16:49:49.062+02')).toBe('2026-11-26T14:49:49.062Z');
    expect(iso(new Date(0))).toBe('1970-01-01T00:00:00.000Z');
    expect(() => iso('not a date')).toThrow(RangeError);
  });
});
