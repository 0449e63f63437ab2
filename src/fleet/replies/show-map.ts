import { RuntimeParseError } from './runtime-parse-error.js';

export interface MapEntry {
  /** HAProxy's reference of the entry (an address), usable as `#<ref>` in some commands. */
  readonly ref: string;
  readonly key: string;
  readonly value: string;
}

/** `show map <file>` lines: `0x55d0... key value`. */
export function parseShowMap(text: string): MapEntry[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const m = /^(0x[0-9a-f]+) (\S+) ?(.*)$/.exec(line);
      if (!m) throw new RuntimeParseError('show map', `unexpected line ${JSON.stringify(line.slice(0, 80))}`);
      return { ref: m[1]!, key: m[2]!, value: m[3]! };
    });
}
