/** Compares strings by UTF-16 code units, as `<` does: the same order on every machine and locale. */
export const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A copy sorted by a string key. Rows read from the database usually arrive sorted: check first, in O(n). */
export function sortedByKey<T>(items: readonly T[], key: (item: T) => string): T[] {
  for (let i = 1; i < items.length; i++) {
    if (key(items[i - 1]!) > key(items[i]!)) return [...items].sort((a, b) => byString(key(a), key(b)));
  }
  return [...items];
}
