import { RuntimeParseError } from './runtime-parse-error.js';

/** What `get map <file> <key>` found: the entry's value, or nothing. */
export type MapLookup =
  | { readonly found: false }
  | { readonly found: true; readonly key: string; readonly value: string };

/**
 * `type=str, case=sensitive, found=yes, idx=tree, key="t1", value="100", type="str"`, or
 * `type=str, case=sensitive, found=no`. Keys and values the control plane writes are tokens
 * without quotes or backslashes (the map commands refuse others), so the quoted fields are read as is.
 */
export function parseGetMap(text: string): MapLookup {
  const line = text.trim();
  if (/\bfound=no\b/.test(line)) return { found: false };
  const m = /\bfound=yes\b.*?\bkey="([^"]*)", value="([^"]*)"/.exec(line);
  if (!m) throw new RuntimeParseError('get map', `unexpected reply ${JSON.stringify(line.slice(0, 120))}`);
  return { found: true, key: m[1]!, value: m[2]! };
}
