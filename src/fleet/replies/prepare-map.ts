import { RuntimeParseError } from './runtime-parse-error.js';

/** The version `prepare map` created ("New version created: 3"). */
export function parsePreparedVersion(text: string): number {
  const m = /^New version created: (\d+)$/.exec(text.trim());
  if (!m) throw new RuntimeParseError('prepare map', `unexpected reply ${JSON.stringify(text.slice(0, 80))}`);
  return Number(m[1]);
}
