import { describeEndpoint, type RuntimeEndpoint } from './connect-socket.js';
import { RuntimeClient, type RuntimeClientOptions } from './runtime-client.js';

/**
 * One long-lived RuntimeClient per node, shared by everyone who talks to that node (the
 * reconciler, plan previews): one pipelined connection each, and one backoff state, so a dead
 * node is not hammered by two callers. A node whose Runtime API moved gets a new client.
 */
export class RuntimeClientPool {
  private readonly clients = new Map<string, { readonly endpoint: string; readonly client: RuntimeClient }>();
  private closed = false;

  constructor(private readonly options: RuntimeClientOptions = {}) {}

  client(node: string, endpoint: RuntimeEndpoint): RuntimeClient {
    const key = describeEndpoint(endpoint);
    const known = this.clients.get(node);
    if (known !== undefined && known.endpoint === key) return known.client;
    if (known !== undefined) void known.client.close();
    const client = new RuntimeClient(endpoint, this.options);
    // A closed pool still answers (every command not executed) rather than throwing at callers.
    if (this.closed) void client.close();
    else this.clients.set(node, { endpoint: key, client });
    return client;
  }

  /** Closes the clients of nodes not named (deleted, or no longer with a Runtime API). */
  retain(nodes: ReadonlySet<string>): void {
    for (const [node, { client }] of this.clients) {
      if (nodes.has(node)) continue;
      this.clients.delete(node);
      void client.close();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map(({ client }) => client.close()));
  }
}
