import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { z } from 'zod';
import type { nodeReportSchema } from '../../domain/node.js';
import { deliveredConfigSchema, type DeliveredConfig } from './delivered-config.js';

export type AgentReport = z.input<typeof nodeReportSchema>;

export type FetchedConfig = { readonly changed: true; readonly config: DeliveredConfig } | { readonly changed: false };

/** The two calls an agent makes; tests pass fakes. */
export interface ControlPlaneApi {
  /** The node's config; with `etag` and `waitSeconds`, a long poll that answers unchanged after the wait. */
  fetchConfig(request: { etag: string | null; waitSeconds: number; signal?: AbortSignal }): Promise<FetchedConfig>;
  report(report: AgentReport, signal?: AbortSignal): Promise<void>;
}

/**
 * Why a call failed, in the terms the agent acts on: `unreachable` and `server` are retried
 * quickly with backoff; `unauthorized`, `forbidden` and `not-found` need an operator, so they
 * are retried slowly; `invalid` is an answer the agent cannot use.
 */
export type ControlPlaneFailure = 'unreachable' | 'server' | 'unauthorized' | 'forbidden' | 'not-found' | 'invalid';

export class ControlPlaneError extends Error {
  override readonly name = 'ControlPlaneError';
  constructor(
    readonly failure: ControlPlaneFailure,
    message: string,
    readonly status: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ControlPlaneClientOptions {
  /** One or more control-plane replicas' base URLs; calls go to one and fail over to the next. */
  readonly urls: readonly string[];
  readonly node: string;
  readonly token: string;
  readonly agentVersion: string;
  /** Per request, on top of the long-poll wait. */
  readonly timeoutMs?: number;
  /** Told when a call leaves a replica that failed for the next one. */
  readonly onFailover?: (event: { from: string; to: string; error: ControlPlaneError }) => void;
}

/**
 * The agent's HTTP client (axios), with every failure turned into a ControlPlaneError.
 *
 * With several replicas it sticks to the one that last answered. A call that cannot reach it, or
 * gets a 5xx, is sent to the next replica at once (round robin, each tried at most once per
 * call), and the first that answers becomes the one to stick to. Only when every replica failed
 * does the call fail, and the agent's backoff decides when to try again.
 */
export class ControlPlaneClient implements ControlPlaneApi {
  private readonly http: AxiosInstance;
  private readonly timeoutMs: number;
  private readonly nodePath: string;
  private readonly urls: readonly string[];
  private current = 0;

  constructor(private readonly options: ControlPlaneClientOptions) {
    if (options.urls.length === 0) throw new Error('ControlPlaneClient needs at least one control-plane URL');
    this.urls = options.urls.map((u) => u.replace(/\/+$/, ''));
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.nodePath = `/v1/nodes/${encodeURIComponent(options.node)}`;
    this.http = axios.create({
      headers: { authorization: `Bearer ${options.token}`, 'user-agent': `switchyard-agent/${options.agentVersion}` },
      // Every status is judged here, in one place.
      validateStatus: () => true,
      maxRedirects: 0,
      // A connection per request: one poll per --wait and one heartbeat per --heartbeat cost
      // nothing, and no idle socket outlives a control plane restart or keeps the process alive.
      httpAgent: new http.Agent({ keepAlive: false }),
      httpsAgent: new https.Agent({ keepAlive: false }),
    });
  }

  async fetchConfig({
    etag,
    waitSeconds,
    signal,
  }: {
    etag: string | null;
    waitSeconds: number;
    signal?: AbortSignal;
  }): Promise<FetchedConfig> {
    const wait = etag === null ? 0 : waitSeconds;
    const res = await this.call((baseURL) =>
      this.http.get(`${this.nodePath}/config`, {
        baseURL,
        params: { wait },
        headers: etag === null ? {} : { 'if-none-match': `"${etag}"` },
        timeout: wait * 1000 + this.timeoutMs,
        signal,
      }),
    );
    if (res.status === 304) return { changed: false };
    if (res.status !== 200) throw failureFor(res);
    const parsed = deliveredConfigSchema.safeParse(res.data);
    if (!parsed.success)
      throw new ControlPlaneError(
        'invalid',
        `the control plane sent a config the agent cannot use: ${z.prettifyError(parsed.error)}`,
        200,
      );
    return { changed: true, config: parsed.data };
  }

  async report(report: AgentReport, signal?: AbortSignal): Promise<void> {
    const res = await this.call((baseURL) =>
      this.http.post(`${this.nodePath}/status`, report, { baseURL, timeout: this.timeoutMs, signal }),
    );
    if (res.status !== 200) throw failureFor(res);
  }

  /** The replica calls go to first: the one that last answered. */
  get replica(): string {
    return this.urls[this.current]!;
  }

  /**
   * Sends to the current replica, then to each next one while they are unreachable or answer 5xx.
   * Answers that another replica would give too (401, 403, 404, 304, 4xx) are returned as they are.
   */
  private async call(send: (baseURL: string) => Promise<AxiosResponse>): Promise<AxiosResponse> {
    const first = this.current;
    let failed: ControlPlaneError | undefined;
    for (let i = 0; i < this.urls.length; i++) {
      const index = (first + i) % this.urls.length;
      const url = this.urls[index]!;
      if (failed !== undefined)
        this.options.onFailover?.({
          from: this.urls[(index + this.urls.length - 1) % this.urls.length]!,
          to: url,
          error: failed,
        });
      let res: AxiosResponse;
      try {
        res = await send(url);
      } catch (error) {
        if (axios.isCancel(error)) throw error;
        failed = this.named(url, unreachable(error));
        continue;
      }
      if (res.status >= 500) {
        failed = this.named(url, failureFor(res));
        continue;
      }
      // Concurrent calls (a poll and a heartbeat) may both fail over; the last to get an answer wins.
      this.current = index;
      return res;
    }
    // Next time start after the one that failed first, so a dead replica is not always tried first.
    if (this.current === first) this.current = (first + 1) % this.urls.length;
    throw failed!;
  }

  /** With one replica the message stays as it was; with several it names the replica. */
  private named(url: string, error: ControlPlaneError): ControlPlaneError {
    if (this.urls.length === 1) return error;
    return new ControlPlaneError(error.failure, `${url}: ${error.message}`, error.status, { cause: error.cause });
  }
}

function unreachable(error: unknown): ControlPlaneError {
  const code = (error as { code?: string }).code;
  const message = (error as Error).message;
  return new ControlPlaneError(
    'unreachable',
    code === undefined || message.includes(code) ? message : `${code}: ${message}`,
    null,
    { cause: error },
  );
}

function failureFor(res: AxiosResponse): ControlPlaneError {
  const body = res.data as { error?: { message?: unknown } } | undefined;
  const said = typeof body?.error?.message === 'string' ? body.error.message : '';
  const message = `HTTP ${res.status}${said ? `: ${said}` : ''}`;
  if (res.status === 401) return new ControlPlaneError('unauthorized', message, res.status);
  if (res.status === 403) return new ControlPlaneError('forbidden', message, res.status);
  if (res.status === 404) return new ControlPlaneError('not-found', message, res.status);
  if (res.status >= 500 || res.status === 429 || res.status === 408)
    return new ControlPlaneError('server', message, res.status);
  return new ControlPlaneError('invalid', message, res.status);
}
