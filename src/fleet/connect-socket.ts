import net from 'node:net';

/** Where a CLI listens: `stats socket ipv4@host:port` or a unix socket path. */
export type RuntimeEndpoint = { readonly host: string; readonly port: number } | { readonly path: string };

export function describeEndpoint(endpoint: RuntimeEndpoint): string {
  return 'path' in endpoint ? `unix:${endpoint.path}` : `${endpoint.host}:${endpoint.port}`;
}

/** Opens a socket, or rejects with the connect error or after `timeoutMs`; never leaves one dangling. */
export function connectSocket(endpoint: RuntimeEndpoint, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in endpoint ? net.connect({ path: endpoint.path }) : net.connect({ host: endpoint.host, port: endpoint.port });
    const timer = setTimeout(() => fail(new Error(`connect to ${describeEndpoint(endpoint)} timed out after ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
