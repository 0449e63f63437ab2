import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { z } from 'zod';
import type { nodeReportSchema } from '../domain/node.js';
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
  readonly url: string;
  readonly node: string;
  readonly token: string;
  readonly agentVersion: string;
  /** Per request, on top of the long-poll wait. */
  readonly timeoutMs?: number;
}

/** The agent's HTTP client (axios), with every failure turned into a ControlPlaneError. */
export class ControlPlaneClient implements ControlPlaneApi {
  private readonly http: AxiosInstance;
  private readonly timeoutMs: number;
  private readonly nodePath: string;

  constructor(options: ControlPlaneClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.nodePath = `/v1/nodes/${encodeURIComponent(options.node)}`;
    this.http = axios.create({
      baseURL: options.url.replace(/\/+$/, ''),
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

  async fetchConfig({ etag, waitSeconds, signal }: { etag: string | null; waitSeconds: number; signal?: AbortSignal }): Promise<FetchedConfig> {
    const wait = etag === null ? 0 : waitSeconds;
    const res = await this.call(() =>
      this.http.get(`${this.nodePath}/config`, {
        params: { wait },
        headers: etag === null ? {} : { 'if-none-match': `"${etag}"` },
        timeout: wait * 1000 + this.timeoutMs,
        signal,
      }),
    );
    if (res.status === 304) return { changed: false };
    if (res.status !== 200) throw failureFor(res);
    const parsed = deliveredConfigSchema.safeParse(res.data);
    if (!parsed.success) throw new ControlPlaneError('invalid', `the control plane sent a config the agent cannot use: ${z.prettifyError(parsed.error)}`, 200);
    return { changed: true, config: parsed.data };
  }

  async report(report: AgentReport, signal?: AbortSignal): Promise<void> {
    const res = await this.call(() => this.http.post(`${this.nodePath}/status`, report, { timeout: this.timeoutMs, signal }));
    if (res.status !== 200) throw failureFor(res);
  }

  private async call(send: () => Promise<AxiosResponse>): Promise<AxiosResponse> {
    try {
      return await send();
    } catch (error) {
      if (axios.isCancel(error)) throw error;
      const code = (error as { code?: string }).code;
      const message = (error as Error).message;
      throw new ControlPlaneError('unreachable', code === undefined || message.includes(code) ? message : `${code}: ${message}`, null, { cause: error });
    }
  }
}

function failureFor(res: AxiosResponse): ControlPlaneError {
  const body = res.data as { error?: { message?: unknown } } | undefined;
  const said = typeof body?.error?.message === 'string' ? body.error.message : '';
  const message = `HTTP ${res.status}${said ? `: ${said}` : ''}`;
  if (res.status === 401) return new ControlPlaneError('unauthorized', message, res.status);
  if (res.status === 403) return new ControlPlaneError('forbidden', message, res.status);
  if (res.status === 404) return new ControlPlaneError('not-found', message, res.status);
  if (res.status >= 500 || res.status === 429 || res.status === 408) return new ControlPlaneError('server', message, res.status);
  return new ControlPlaneError('invalid', message, res.status);
}
