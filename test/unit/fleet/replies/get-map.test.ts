import { describe, expect, it } from 'vitest';
import { parseGetMap } from '../../../../src/fleet/replies/get-map.js';
import { RuntimeParseError } from '../../../../src/fleet/replies/runtime-parse-error.js';
import { classifyReply } from '../../../../src/fleet/runtime-api/reply-verdict.js';

/** As HAProxy 2.6.12 answered `get map /path/caps.map <key>` (measured on this machine). */
const FOUND = 'type=str, case=sensitive, found=yes, idx=tree, key="t1", value="100", type="str"';
const MISSING = 'type=str, case=sensitive, found=no';
const UNKNOWN_MAP = 'Unknown map identifier. Please use #<id> or <file>.';

describe('get map replies', () => {
  it('reads the entry a lookup found, or that there is none', () => {
    expect(parseGetMap(FOUND)).toEqual({ found: true, key: 't1', value: '100' });
    expect(parseGetMap(MISSING)).toEqual({ found: false });
  });

  it('judges a lookup a success whether or not it found the key, and an unknown map an error', () => {
    expect(classifyReply('get-map', FOUND)).toEqual({ ok: true, output: FOUND });
    expect(classifyReply('get-map', MISSING)).toEqual({ ok: true, output: MISSING });
    expect(classifyReply('get-map', UNKNOWN_MAP)).toEqual({ ok: false, message: UNKNOWN_MAP });
  });

  it('refuses a reply in another shape instead of guessing', () => {
    expect(() => parseGetMap('type=str, case=sensitive, found=yes')).toThrow(RuntimeParseError);
  });
});
