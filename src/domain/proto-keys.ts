/**
 * Where `value` holds an own `__proto__` key (as `JSON.parse` and YAML parsers make them), at any
 * depth. Zod skips such keys rather than refusing them, because copying one would replace the
 * output's prototype: without this check `labels: {"__proto__": "x"}` would be dropped in silence.
 */
export function protoKeyPaths(
  value: unknown,
  at: readonly (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      protoKeyPaths(item, [...at, i], out);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const key of Object.keys(value)) {
      if (key === '__proto__') out.push([...at, key]);
      else protoKeyPaths((value as Record<string, unknown>)[key], [...at, key], out);
    }
  }
  return out;
}

export const PROTO_KEY_MESSAGE = '"__proto__" is not a valid key';
