import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PromptFramer, stripPayloadPrompts } from '../../../../../src/fleet/runtime-api/connection/prompt-framer.js';

/** A real pipelined prompt-mode session with HAProxy 2.6 (prompt, 9 commands, one with a payload). */
const session = readFileSync(new URL('../../../../fixtures/runtime/prompt-session.txt', import.meta.url), 'utf8');

const EXPECTED = [
  '', // the reply to `prompt`
  '20 (initial 20)\n',
  '',
  'No such server.\n',
  '+ + + ',
  expect.stringMatching(/^0x[0-9a-f]+ example\.test be_app\n[\s\S]*k2 v2\n$/),
  "no need to change the addr, no need to change the port by 'stats socket command'\n",
  'Only servers in maintenance mode can be deleted.',
  expect.stringMatching(/^1\n# be_id [\s\S]*\n4 be_other 1 o1 [\s\S]*\n$/),
  '',
];

describe('PromptFramer', () => {
  it('splits a real session into one reply per command', () => {
    expect(new PromptFramer().push(session)).toEqual(EXPECTED);
  });

  it('gives the same replies whatever the chunk boundaries, prompts split across chunks included', () => {
    for (const size of [1, 2, 3, 5, 7, 64]) {
      const framer = new PromptFramer();
      const replies: string[] = [];
      for (let i = 0; i < session.length; i += size) replies.push(...framer.push(session.slice(i, i + size)));
      expect(replies).toEqual(EXPECTED);
      expect(framer.idle).toBe(true);
    }
  });

  it('keeps ">" inside a reply and holds back an unfinished reply', () => {
    const framer = new PromptFramer();
    expect(framer.push('a > b\n>x\n')).toEqual([]);
    expect(framer.idle).toBe(false);
    expect(framer.push('\n> ')).toEqual(['a > b\n>x\n']);
  });

  it('strips the "+ " HAProxy prints for each payload line, and only those', () => {
    expect(stripPayloadPrompts('+ + + Transaction created for certificate /c.pem!\n', 2)).toBe(
      'Transaction created for certificate /c.pem!\n',
    );
    expect(stripPayloadPrompts('+ + + ', 2)).toBe('');
    expect(stripPayloadPrompts('+ + oops', 5)).toBe('oops');
  });
});
