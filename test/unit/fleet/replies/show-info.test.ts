import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseShowInfo } from '../../../../src/fleet/replies/show-info.js';

/** Replies captured from HAProxy 2.6.12 on this machine (see test/fixtures/runtime). */
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/runtime/${name}`, import.meta.url), 'utf8');

describe('show info', () => {
  it('gives every field and the ones callers need, typed', () => {
    const info = parseShowInfo(fixture('show-info.txt'));
    expect(info).toMatchObject({
      version: '2.6.12-1+deb12u4',
      pid: 21215,
      uptimeSec: 60,
      currConns: expect.any(Number),
      maxconn: expect.any(Number),
      stopping: false,
    });
    expect(info.fields.Nbthread).toBe('2');
    expect(info.fields['Unstoppable Jobs']).toBeDefined();
  });
});
