import { createServer } from 'node:net';
import type { BindFailure, FailedListener, Listener } from '../config-listeners.js';

/** What an errno says about a listener, when it says something a tenant's VIP can be blamed for. */
const FAILURES: Readonly<Record<string, BindFailure>> = {
  EADDRINUSE: 'in-use',
  EADDRNOTAVAIL: 'address-not-available',
};

/**
 * Finds which of these listeners cannot be bound on this node now, by binding each for a moment
 * (without SO_REUSEPORT, so a port another process holds is found whether or not that process
 * set it). Call it only with listeners the running proxy does not hold: those it does are in use
 * by the proxy itself. Other errors (EACCES below port 1024 when not root) blame no listener.
 */
export async function probeListeners(listeners: readonly Listener[]): Promise<FailedListener[]> {
  const out: FailedListener[] = [];
  for (const l of listeners) {
    const code = await tryBind(l);
    const reason = code === null ? undefined : FAILURES[code];
    if (reason !== undefined) out.push({ ...l, reason });
  }
  return out;
}

function tryBind(l: Listener): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'UNKNOWN'));
    server.listen({ host: l.address, port: l.port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}
