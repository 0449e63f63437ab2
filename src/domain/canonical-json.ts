/**
 * JSON with object keys sorted and undefined (and, for comparisons, null) members dropped, so two
 * values that mean the same thing give the same text whatever order their keys came in.
 */
export function canonicalJson(value: unknown, dropNulls = false): string {
  return JSON.stringify(sortDeep(value, dropNulls));
}

/** Deep equality of two JSON-like values, where an absent member equals a null one. */
export function sameValue(a: unknown, b: unknown): boolean {
  return canonicalJson(a, true) === canonicalJson(b, true);
}

function sortDeep(value: unknown, dropNulls: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => sortDeep(v, dropNulls));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || (dropNulls && v === null)) continue;
    out[key] = sortDeep(v, dropNulls);
  }
  return out;
}
