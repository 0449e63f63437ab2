import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { jitteredDelay } from '../util/backoff.js';
import { EXIT, type ExitCode } from './exit-codes.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiRequest {
  readonly method: HttpMethod;
  /** Path under the base URL, e.g. `/v1/tenants/a/vips`. */
  readonly path: string;
  readonly body?: unknown;
  readonly query?: Readonly<Record<string, string>>;
  /** A resource revision, sent as `If-Match: "<revision>"`. */
  readonly ifMatch?: number;
  readonly idempotencyKey?: string;
}

export interface ApiAnswer<T = unknown> {
  readonly status: number;
  readonly body: T;
  /** The resource revision from the `ETag` header, when there is one. */
  readonly etag: number | null;
}

/**
 * Why a call failed, in the terms the CLI acts on. `invalid` (400, 413, 422) is the caller's input;
 * `unauthorized`, `forbidden`, `not-found`, `conflict` and `precondition` are refusals a person must
 * resolve; `server` and `network` may go away on their own (and were retried).
 */
export type ApiFailure =
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'precondition'
  | 'server'
  | 'network';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly failure: ApiFailure,
    message: string,
    readonly request: Pick<ApiRequest, 'method' | 'path'>,
    readonly status: number | null = null,
    /** The server's `error.code` and `error.details`, when it answered with its error shape. */
    readonly code: string | null = null,
    readonly details: unknown = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get exitCode(): ExitCode {
    return exitCodeForFailure(this.failure);
  }
}

export function exitCodeForFailure(failure: ApiFailure): ExitCode {
  if (failure === 'invalid') return EXIT.invalidInput;
  if (failure === 'server' || failure === 'network') return EXIT.serverError;
  return EXIT.conflict;
}

export interface ApiClientOptions {
  readonly url: string;
  readonly token: string;
  /** Attempts per request for network errors and 5xx answers (1 = no retry). */
  readonly attempts?: number;
  /** First backoff delay; doubled per retry with jitter, capped at 5 s. */
  readonly backoffMs?: number;
  readonly timeoutMs?: number;
  readonly userAgent?: string;
  /** Injected by tests to skip the waits. */
  readonly sleep?: (ms: number) => Promise<void>;
}

const DEFAULT_ATTEMPTS = 4;
const MAX_BACKOFF_MS = 5_000;
/** Network errors where the request never left this machine: retrying cannot duplicate a write. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * The CLI's HTTP client for the REST API (axios). Every failure becomes an ApiError; network errors
 * and 5xx answers are retried with capped exponential backoff, but only for requests that cannot
 * be applied twice: reads, PUT/PATCH/DELETE, and POSTs carrying an Idempotency-Key.
 */
export class ApiClient {
  readonly baseUrl: string;
  private readonly http: AxiosInstance;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: ApiClientOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    this.attempts = Math.max(1, options.attempts ?? DEFAULT_ATTEMPTS);
    this.backoffMs = options.backoffMs ?? 250;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.http = axios.create({
      baseURL: this.baseUrl,
      timeout: options.timeoutMs ?? 60_000,
      headers: { authorization: `Bearer ${options.token}`, 'user-agent': options.userAgent ?? 'switchyard-cli' },
      // Every status is judged in one place (toError), not by axios.
      validateStatus: () => true,
      maxRedirects: 0,
      // A short-lived CLI: no idle socket may keep the process alive after the last answer.
      httpAgent: new http.Agent({ keepAlive: false }),
      httpsAgent: new https.Agent({ keepAlive: false }),
    });
  }

  async send<T = unknown>(req: ApiRequest): Promise<ApiAnswer<T>> {
    const retrySafe = req.method !== 'POST' || req.idempotencyKey !== undefined;
    for (let attempt = 1; ; attempt++) {
      let res: AxiosResponse;
      try {
        res = await this.http.request({
          method: req.method,
          url: req.path,
          params: req.query,
          data: req.body,
          headers: {
            ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(req.ifMatch !== undefined ? { 'if-match': `"${req.ifMatch}"` } : {}),
            ...(req.idempotencyKey !== undefined ? { 'idempotency-key': req.idempotencyKey } : {}),
          },
        });
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (attempt < this.attempts && (retrySafe || NOT_SENT.has(code))) {
          await this.sleep(this.delay(attempt));
          continue;
        }
        throw networkError(this.baseUrl, req, err, attempt);
      }
      if (res.status < 400) return { status: res.status, body: res.data as T, etag: etagOf(res) };
      if (res.status >= 500 && retrySafe && attempt < this.attempts) {
        await this.sleep(retryAfterMs(res) ?? this.delay(attempt));
        continue;
      }
      throw toError(req, res, attempt);
    }
  }

  get<T = unknown>(path: string, query?: Record<string, string>): Promise<ApiAnswer<T>> {
    return this.send<T>({ method: 'GET', path, ...(query ? { query } : {}) });
  }

  /** Every item of a paged list (`{items, nextCursor}`), following the cursor to the end. */
  async list<T>(path: string): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string> = cursor === null ? {} : { cursor };
      // Only paged endpoints take a limit; the routes list is not paged and refuses unknown query keys.
      if (!path.endsWith('/routes')) query.limit = '500';
      const page: ApiAnswer<{ items: T[]; nextCursor: string | null }> = await this.get(path, query);
      out.push(...page.body.items);
      cursor = page.body.nextCursor ?? null;
    } while (cursor !== null);
    return out;
  }

  /** Equal jitter, so CI jobs that failed together do not retry together. */
  private delay(attempt: number): number {
    return jitteredDelay({ initialMs: this.backoffMs, maxMs: MAX_BACKOFF_MS, factor: 2 }, attempt);
  }
}

function etagOf(res: AxiosResponse): number | null {
  const m = /^(?:W\/)?"(\d+)"$/.exec(String(res.headers.etag ?? ''));
  return m ? Number(m[1]) : null;
}

function retryAfterMs(res: AxiosResponse): number | null {
  const seconds = Number(res.headers['retry-after']);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_BACKOFF_MS) : null;
}

function networkError(baseUrl: string, req: ApiRequest, err: unknown, attempts: number): ApiError {
  const e = err as { code?: string; message?: string };
  const why =
    e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT' ? 'timed out' : (e.code ?? e.message ?? 'network error');
  return new ApiError(
    'network',
    `cannot reach the control plane at ${baseUrl} (${why}) after ${attempts} attempt${attempts === 1 ? '' : 's'}: ` +
      'check SWITCHYARD_URL and that the control plane is running, then re-run',
    req,
    null,
    null,
    null,
    { cause: err },
  );
}

/** What to do next, per failure: the CLI's errors end with it. */
const NEXT_STEP: Record<ApiFailure, string> = {
  invalid: 'fix the input and re-run',
  unauthorized: 'check SWITCHYARD_TOKEN (unset, mistyped, expired or revoked)',
  forbidden: "this token's role may not do this: use a token with the right role (see docs/api.md, Roles)",
  'not-found': 'check the names (a tenant-scoped token sees only its own tenant)',
  conflict: 'resolve the conflict, then re-run',
  precondition: 'it was changed by someone else meanwhile: re-run to plan against the current state',
  server: 'the control plane failed: retry later, and quote the request id when reporting it',
  network: 'check SWITCHYARD_URL and that the control plane is running',
};

function toError(req: ApiRequest, res: AxiosResponse, attempts: number): ApiError {
  const failure = failureFor(res.status);
  const body = res.data as { error?: { code?: string; message?: string; details?: unknown } } | undefined;
  const serverMessage = body?.error?.message ?? `HTTP ${res.status}`;
  const requestId = res.headers['x-request-id'];
  const retried = failure === 'server' && attempts > 1 ? ` after ${attempts} attempts` : '';
  const id = failure === 'server' && requestId ? ` (request id ${String(requestId)})` : '';
  return new ApiError(
    failure,
    `${req.method} ${req.path}: ${res.status} ${serverMessage}${id}${retried}; ${NEXT_STEP[failure]}`,
    req,
    res.status,
    body?.error?.code ?? null,
    body?.error?.details ?? null,
  );
}

function failureFor(status: number): ApiFailure {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  if (status === 412) return 'precondition';
  if (status >= 500) return 'server';
  return 'invalid';
}

/** The client `SWITCHYARD_URL` and `SWITCHYARD_TOKEN` describe; throws a ClientConfigError when the environment does not say how. */
export function clientFromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient {
  const url = env.SWITCHYARD_URL ?? 'http://127.0.0.1:8080';
  const token = env.SWITCHYARD_TOKEN;
  if (!token) throw new ClientConfigError();
  try {
    new URL(url);
  } catch {
    throw new ClientConfigError(
      `SWITCHYARD_URL is not a URL: ${JSON.stringify(url)} (e.g. https://switchyard.internal:8080)`,
    );
  }
  const retries = env.SWITCHYARD_RETRIES;
  if (retries !== undefined && retries !== '' && !/^\d{1,2}$/.test(retries)) {
    throw new ClientConfigError(
      `SWITCHYARD_RETRIES must be a whole number of retries (0-99), not ${JSON.stringify(retries)}`,
    );
  }
  return new ApiClient({ url, token, ...(retries ? { attempts: Number(retries) + 1 } : {}) });
}

/** The environment does not say how to reach the control plane: invalid input (exit 1). */
export class ClientConfigError extends Error {
  override readonly name = 'ClientConfigError';
  constructor(
    message = 'set SWITCHYARD_TOKEN to an API token (and SWITCHYARD_URL to the control plane, default http://127.0.0.1:8080)',
  ) {
    super(message);
  }
}
