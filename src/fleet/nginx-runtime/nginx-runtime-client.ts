import https from 'node:https';
import type tls from 'node:tls';
import type { z } from 'zod';
import type { HeldState, NginxRuntimeChannel, NginxStats, PushReply, StatePush } from '../../domain/nginx-runtime.js';
import { formatRuntimeAddress } from '../../domain/node.js';
import type { RuntimeTls } from '../runtime-api/connection/runtime-client-tls.js';
import { NginxRuntimeError } from './nginx-runtime-error.js';
import { describeStatus, describeTransportError, isStaleSocketError } from './nginx-runtime-failures.js';
import { firstIssue, heldStateSchema, nginxStatsSchema, pushReplySchema } from './nginx-runtime-replies.js';

/** The channel's paths (see domain/nginx-runtime.ts). */
export const NGINX_RUNTIME_PATHS = { state: '/switchyard/v1/state', stats: '/switchyard/v1/stats' } as const;

export interface NginxRuntimeClientOptions {
  /** Longest wait for the TCP connect and TLS handshake of a new connection. */
  readonly connectTimeoutMs?: number;
  /** Longest one call may take, connecting and reading the whole reply included. */
  readonly requestTimeoutMs?: number;
  /**
   * An idle kept-alive connection is closed after this long: well within nginx's own
   * `keepalive_timeout` (75 s by default), so the client is not the one writing into a connection
   * nginx is closing. A reused connection that was closed anyway is retried once on a new one.
   */
  readonly idleTimeoutMs?: number;
  /** Connections per node: a push and a stats read can go at the same time. */
  readonly maxSockets?: number;
  /** A reply larger than this is refused (stats of a very large node are megabytes, not hundreds). */
  readonly maxReplyBytes?: number;
}

const DEFAULTS = {
  connectTimeoutMs: 2_000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 15_000,
  maxSockets: 2,
  maxReplyBytes: 64 * 1024 * 1024,
} as const;

/** One call's raw answer. */
interface Exchange {
  readonly status: number;
  readonly text: string;
}

/**
 * A node's NGINX runtime channel over HTTPS with mutual TLS: kept-alive connections per node, the
 * control plane's client certificate and the fleet CA from the same source as the HAProxy Runtime
 * API client (read at each new connection, so a renewal needs no new client and drops no call),
 * and the node's certificate checked against the address dialled (an IP subjectAltName), so one
 * node can never stand in for another. Every reply is validated into the contract's types; every
 * failure is a NginxRuntimeError whose message says what to do.
 */
export class NginxRuntimeClient implements NginxRuntimeChannel {
  readonly name: string;
  private readonly options: Required<NginxRuntimeClientOptions>;
  private readonly agent: https.Agent;
  private closed = false;

  constructor(
    readonly endpoint: { readonly host: string; readonly port: number },
    private readonly tls: RuntimeTls,
    options: NginxRuntimeClientOptions = {},
  ) {
    this.name = `tls:${formatRuntimeAddress(endpoint)}`;
    this.options = { ...DEFAULTS, ...definedOnly(options) };
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: this.options.maxSockets,
      maxFreeSockets: this.options.maxSockets,
      // The agent closes a free socket when this fires; calls in flight have their own deadline.
      timeout: this.options.idleTimeoutMs,
      scheduling: 'lifo',
    });
  }

  held(): Promise<HeldState> {
    return this.call('GET', NGINX_RUNTIME_PATHS.state, undefined, heldStateSchema, 'HeldState');
  }

  push(body: StatePush): Promise<PushReply> {
    return this.call('POST', NGINX_RUNTIME_PATHS.state, JSON.stringify(body), pushReplySchema, 'PushReply');
  }

  stats(): Promise<NginxStats> {
    return this.call('GET', NGINX_RUNTIME_PATHS.stats, undefined, nginxStatsSchema, 'NginxStats');
  }

  /** Closes every connection; calls in flight fail, later ones fail at once. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  private async call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    schema: z.ZodType<T>,
    shape: string,
  ): Promise<T> {
    const what = `${method} ${path}`;
    const deadline = Date.now() + this.options.requestTimeoutMs;
    let exchange: Exchange;
    try {
      exchange = await this.exchange(method, path, body, deadline);
    } catch (error) {
      // A kept-alive connection nginx closed as it was reused: the request never reached a
      // handler (or, for a push, re-applying equal entries changes nothing), so once more, fresh.
      if (!isStaleSocketError(error) || Date.now() >= deadline) throw this.failure(error, what);
      try {
        exchange = await this.exchange(method, path, body, deadline);
      } catch (again) {
        throw this.failure(again, what);
      }
    }
    // A push some of whose entries a full dictionary refused is still a PushReply: the caller retries those.
    if (exchange.status === 200 || (exchange.status === 507 && method === 'POST')) {
      const parsed = this.parse(exchange.text, schema);
      if (parsed.ok) return parsed.value;
      if (exchange.status === 200)
        throw new NginxRuntimeError(
          'protocol',
          `${this.name} answered ${what} with a reply that is not a ${shape} (${parsed.issue}): the node's Lua module and the control plane speak different versions of the runtime channel; apply the node's latest configuration, which carries the module`,
        );
    }
    throw describeStatus(this.name, what, exchange.status, exchange.text);
  }

  private parse<T>(text: string, schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; issue: string } {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { ok: false, issue: `not JSON: ${JSON.stringify(text.slice(0, 80))}` };
    }
    const result = schema.safeParse(json);
    return result.success ? { ok: true, value: result.data } : { ok: false, issue: firstIssue(result.error) };
  }

  private failure(error: unknown, what: string): NginxRuntimeError {
    return error instanceof NginxRuntimeError ? error : describeTransportError(this.name, what, error);
  }

  /** One request and its whole reply; rejects with the transport's error, or a NginxRuntimeError of its own. */
  private exchange(method: string, path: string, body: string | undefined, deadline: number): Promise<Exchange> {
    if (this.closed)
      return Promise.reject(
        new NginxRuntimeError('unavailable', `the runtime channel client of ${this.name} is closed`),
      );
    const secureContext: tls.SecureContext | null = this.tls.secureContext();
    if (secureContext === null)
      return Promise.reject(
        new NginxRuntimeError(
          'unavailable',
          `no client certificate for ${this.name} yet: the control plane issues one at start (check its log for the Runtime API CA)`,
        ),
      );
    return new Promise((resolve, reject) => {
      let settled = false;
      const headers: Record<string, string | number> = { accept: 'application/json' };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      // The agent hands these to tls.connect for each new connection: `secureContext` is the
      // current client certificate and trusted CAs (https's own types leave it out).
      const options: https.RequestOptions & Pick<tls.ConnectionOptions, 'secureContext'> = {
        host: this.endpoint.host,
        port: this.endpoint.port,
        method,
        path,
        headers,
        agent: this.agent,
        secureContext,
        rejectUnauthorized: true,
      };
      const req = https.request(options);
      const finish = (outcome: { error: unknown } | { exchange: Exchange }): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if ('error' in outcome) {
          req.destroy();
          reject(outcome.error);
        } else resolve(outcome.exchange);
      };
      const timer = setTimeout(
        () =>
          finish({
            error: new NginxRuntimeError(
              'timeout',
              `no complete reply from ${this.name} to ${method} ${path} within ${this.options.requestTimeoutMs} ms: the node's nginx is overloaded or stopped answering; the next pass tries again`,
            ),
          }),
        Math.max(1, deadline - Date.now()),
      );
      req.on('socket', (socket) => {
        if (req.reusedSocket) return;
        const connecting = setTimeout(
          () =>
            finish({
              error: new NginxRuntimeError(
                'timeout',
                `connect to ${this.name} timed out after ${this.options.connectTimeoutMs} ms: check that the node is up and its runtimeAddress is reachable from the control plane`,
              ),
            }),
          this.options.connectTimeoutMs,
        );
        socket.once('secureConnect', () => clearTimeout(connecting));
        socket.once('close', () => clearTimeout(connecting));
      });
      req.on('error', (error) => finish({ error: Object.assign(error, { reusedSocket: req.reusedSocket }) }));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.options.maxReplyBytes) {
            finish({
              error: new NginxRuntimeError(
                'protocol',
                `${this.name} answered ${method} ${path} with more than ${this.options.maxReplyBytes} bytes: not a runtime channel reply`,
              ),
            });
          } else chunks.push(chunk);
        });
        res.on('error', (error) => finish({ error }));
        // A reply cut short (the node closed the connection mid-body) ends in 'close' without 'end'.
        res.on('close', () => {
          if (!res.complete)
            finish({
              error: Object.assign(new Error('the connection closed before the whole reply'), { code: 'ECONNRESET' }),
            });
        });
        res.on('end', () =>
          finish({ exchange: { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') } }),
        );
      });
      req.end(body);
    });
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
