import { RuntimeParseError } from './runtime-parse-error.js';

/** `get weight <backend>/<server>`: "10 (initial 10)". */
export function parseGetWeight(text: string): { readonly current: number; readonly initial: number } {
  const m = /^(\d+) \(initial (\d+)\)$/.exec(text.trim());
  if (!m) throw new RuntimeParseError('get weight', `unexpected reply ${JSON.stringify(text.slice(0, 80))}`);
  return { current: Number(m[1]), initial: Number(m[2]) };
}
