import type { NginxRuntimeChannel } from '../../domain/nginx-runtime.js';
import { formatRuntimeAddress } from '../../domain/node.js';
import type { RuntimeTls } from '../runtime-api/connection/runtime-client-tls.js';
import { NginxRuntimeClient, type NginxRuntimeClientOptions } from './nginx-runtime-client.js';
import { NginxRuntimeError } from './nginx-runtime-error.js';

/** Where an NGINX node's runtime channel is reached: one long-lived client per node. */
export interface NginxChannels {
  channel(node: string, address: { readonly host: string; readonly port: number }): NginxRuntimeChannel;
}

/**
 * One NginxRuntimeClient per NGINX node, shared by everyone who talks to it (the reconciler, plan
 * previews, the stats poller), so its kept-alive connections serve them all. A node whose runtime
 * address moved gets a new client; the old one is closed.
 */
export class NginxChannelPool implements NginxChannels {
  private readonly nodes = new Map<string, { readonly address: string; readonly client: NginxRuntimeClient }>();
  private closed = false;

  constructor(
    private readonly tls: RuntimeTls,
    private readonly options: NginxRuntimeClientOptions = {},
  ) {}

  channel(node: string, address: { readonly host: string; readonly port: number }): NginxRuntimeChannel {
    if (this.closed) return CLOSED;
    const key = formatRuntimeAddress(address)!;
    const known = this.nodes.get(node);
    if (known !== undefined && known.address === key) return known.client;
    known?.client.close();
    const client = new NginxRuntimeClient(address, this.tls, this.options);
    this.nodes.set(node, { address: key, client });
    return client;
  }

  /** Closes the clients of nodes not named (deleted, or no longer with a runtime address). */
  retain(nodes: ReadonlySet<string>): void {
    for (const [node, { client }] of this.nodes) {
      if (nodes.has(node)) continue;
      this.nodes.delete(node);
      client.close();
    }
  }

  close(): void {
    this.closed = true;
    for (const { client } of this.nodes.values()) client.close();
    this.nodes.clear();
  }
}

const closedError = () =>
  new NginxRuntimeError('unavailable', 'the runtime channels are closed (the control plane is stopping)');

/** What a closed pool hands out: every call fails at once rather than throwing at the caller. */
const CLOSED: NginxRuntimeChannel = {
  held: () => Promise.reject(closedError()),
  push: () => Promise.reject(closedError()),
  stats: () => Promise.reject(closedError()),
  close: () => undefined,
};
