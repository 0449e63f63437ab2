import net from 'node:net';
import tls from 'node:tls';
import type { RuntimeTls } from './runtime-client-tls.js';

/**
 * Where a CLI listens: a TCP address (with `tls`: HAProxy's mTLS listener in front of the admin
 * socket or master CLI, which is how the control plane reaches every node) or a unix socket path
 * (the agent, on the node itself).
 */
export type RuntimeEndpoint =
  | { readonly host: string; readonly port: number; readonly tls?: RuntimeTls | undefined }
  | { readonly path: string };

export function describeEndpoint(endpoint: RuntimeEndpoint): string {
  if ('path' in endpoint) return `unix:${endpoint.path}`;
  const address = endpoint.host.includes(':')
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
  return endpoint.tls === undefined ? address : `tls:${address}`;
}

/**
 * Opens a socket, or rejects with the connect (or TLS handshake) error or after `timeoutMs`;
 * never leaves one dangling. Over TLS the node's certificate must chain to the trusted CAs and
 * name the address dialled (an IP subjectAltName): a node cannot stand in for another.
 */
export function connectSocket(endpoint: RuntimeEndpoint, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    let ready: string;
    if ('path' in endpoint) {
      socket = net.connect({ path: endpoint.path });
      ready = 'connect';
    } else if (endpoint.tls !== undefined) {
      const secureContext = endpoint.tls.secureContext();
      if (secureContext === null) {
        reject(
          new Error(
            `no client certificate for ${describeEndpoint(endpoint)} yet: the control plane issues one at start (check its log for the Runtime API CA)`,
          ),
        );
        return;
      }
      socket = tls.connect({ host: endpoint.host, port: endpoint.port, secureContext, rejectUnauthorized: true });
      ready = 'secureConnect';
    } else {
      socket = net.connect({ host: endpoint.host, port: endpoint.port });
      ready = 'connect';
    }
    const timer = setTimeout(
      () => fail(new Error(`connect to ${describeEndpoint(endpoint)} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.once('error', fail);
    socket.once(ready, () => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
