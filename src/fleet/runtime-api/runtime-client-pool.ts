import { describeEndpoint, type RuntimeEndpoint } from './connection/runtime-endpoint.js';
import { LanedExecutor } from './laned-executor.js';
import { RuntimeClient, type RuntimeClientOptions } from './runtime-client.js';
import type { RuntimeExecutor } from './runtime-executor.js';
import type { RuntimeTls } from './connection/runtime-client-tls.js';

export interface RuntimeClientPoolOptions extends RuntimeClientOptions {
  /**
   * Connections per node that a large batch is spread over (see LanedExecutor); small batches
   * and reads use the first alone. Default 2: HAProxy serves each connection on one thread, and
   * it runs as many threads as the host has cores.
   */
  readonly lanes?: number;
  /**
   * TLS for every TCP endpoint: the control plane reaches nodes only through their mTLS
   * listeners. Absent: plain TCP (tests of the client against fakes on loopback).
   */
  readonly tls?: RuntimeTls | undefined;
}

interface NodeClients {
  readonly endpoint: string;
  readonly clients: readonly RuntimeClient[];
  readonly executor: RuntimeExecutor;
}

/**
 * Long-lived RuntimeClients per node, shared by everyone who talks to that node (the reconciler,
 * plan previews, the stats poller): pipelined connections, each with its own backoff state, so a
 * dead node is not hammered by several callers. A node whose Runtime API moved gets new clients.
 */
export class RuntimeClientPool {
  private readonly nodes = new Map<string, NodeClients>();
  private readonly lanes: number;
  private readonly clientOptions: RuntimeClientOptions;
  private readonly tls: RuntimeTls | undefined;
  private closed = false;

  constructor(options: RuntimeClientPoolOptions = {}) {
    const { lanes = 2, tls, ...clientOptions } = options;
    this.lanes = Math.max(1, Math.floor(lanes));
    this.clientOptions = clientOptions;
    this.tls = tls;
  }

  client(node: string, target: RuntimeEndpoint): RuntimeExecutor {
    // The TLS settings are read at each connect: a renewed client certificate needs no new client.
    const endpoint: RuntimeEndpoint =
      'path' in target || this.tls === undefined ? target : { host: target.host, port: target.port, tls: this.tls };
    const key = describeEndpoint(endpoint);
    const known = this.nodes.get(node);
    if (known !== undefined && known.endpoint === key) return known.executor;
    if (known !== undefined) for (const c of known.clients) void c.close();
    // Clients connect on first use: a lane that large batches never need costs nothing.
    const clients = Array.from({ length: this.lanes }, () => new RuntimeClient(endpoint, this.clientOptions));
    const executor = clients.length === 1 ? clients[0]! : new LanedExecutor(clients);
    // A closed pool still answers (every command not executed) rather than throwing at callers.
    if (this.closed) for (const c of clients) void c.close();
    else this.nodes.set(node, { endpoint: key, clients, executor });
    return executor;
  }

  /** Closes the clients of nodes not named (deleted, or no longer with a Runtime API). */
  retain(nodes: ReadonlySet<string>): void {
    for (const [node, { clients }] of this.nodes) {
      if (nodes.has(node)) continue;
      this.nodes.delete(node);
      for (const c of clients) void c.close();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.nodes.values()].flatMap((n) => n.clients);
    this.nodes.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
