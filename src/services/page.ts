/** One page of a keyset-paged list: `nextCursor` is the last key on the page, or null at the end. */
export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

/** The page size a repository should fetch: one extra row says whether another page follows. */
export const fetchSize = (limit: number): number => limit + 1;

/** Cuts `rows` (fetched with `fetchSize(limit)`) to a page, keyed by `key` (the sort column). */
export function toPage<T>(rows: T[], limit: number, key: (item: T) => string): Page<T> {
  if (rows.length <= limit) return { items: rows, nextCursor: null };
  const items = rows.slice(0, limit);
  return { items, nextCursor: key(items[items.length - 1]!) };
}
