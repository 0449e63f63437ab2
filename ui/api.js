// The dashboard's client of the REST API, on the page's own origin. Reads only.

/** The API's token syntax (src/api/mount.ts): anything else would be refused with 401 anyway. */
export const TOKEN_RE = /^[A-Za-z0-9_.~+/=-]{16,512}$/;

const TIMEOUT_MS = 15_000;

/** A failed call: `status` is the HTTP status (0 when the server could not be reached). */
export class ApiError extends Error {
  constructor(status, code, message, path) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.path = path;
  }

  /** The token itself was refused: unknown, deleted or expired (401). */
  get unauthorized() {
    return this.status === 401;
  }

  /** The token is valid but its role may not make this call (403). */
  get forbidden() {
    return this.status === 403;
  }
}

export function createApi(token) {
  async function get(path) {
    let res;
    try {
      res = await fetch(path, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      throw new ApiError(
        0,
        'network',
        `the control plane did not answer (${err instanceof Error ? err.message : String(err)})`,
        path,
      );
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      /* not JSON: reported below by status */
    }
    if (!res.ok) {
      const error = body && typeof body === 'object' ? body.error : null;
      throw new ApiError(res.status, error?.code ?? 'http_error', error?.message ?? `HTTP ${res.status}`, path);
    }
    return body;
  }

  /** Every item of a keyset-paged list (bounded, so a huge fleet cannot hang the page). */
  async function list(path, maxPages = 20) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < maxPages; page++) {
      const sep = path.includes('?') ? '&' : '?';
      const body = await get(`${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...body.items);
      cursor = body.nextCursor;
      if (!cursor) return { items, truncated: false };
    }
    return { items, truncated: true };
  }

  return { get, list };
}

/** Runs `fn` over `items`, at most `limit` at a time; each result is `{ value }` or `{ error }`. */
export async function mapLimited(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { value: await fn(items[i]) };
      } catch (error) {
        results[i] = { error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
