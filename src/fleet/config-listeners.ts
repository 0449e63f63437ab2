import { HAPROXY_FILES, NGINX_FILES } from '../domain/config-files.js';
import type { NodeKind } from '../domain/node.js';
import type { RenderedFiles } from '../domain/snapshot.js';

/** An address and port a proxy's config binds (a VIP, or a listener of the node's own). */
export interface Listener {
  readonly address: string;
  readonly port: number;
}

/** Why a listener could not be bound on the node, as the agent's probe found. */
export type BindFailure = 'in-use' | 'address-not-available';

export interface FailedListener extends Listener {
  readonly reason: BindFailure;
}

// `bind 192.0.2.1:80`, `bind [2001:db8::1]:443 ssl ...`, `bind ipv4@192.0.2.1:80` (HAProxy);
// `listen 192.0.2.1:80 reuseport;`, `listen [2001:db8::1]:443 ssl http2 reuseport;` (NGINX).
const DIRECTIVE: Record<NodeKind, RegExp> = {
  haproxy: /^\s*bind\s+(?:ipv[46]@)?(\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d{1,5})(?=[\s,]|$)/gm,
  nginx: /^\s*listen\s+(\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d{1,5})(?=[\s;])/gm,
};

/**
 * The IP listeners the node's main config file binds, each once, in file order. Unix sockets,
 * wildcard and port-only binds are left out: they name no address a VIP can own.
 */
export function listenersIn(kind: NodeKind, files: RenderedFiles): Listener[] {
  const text = files[kind === 'haproxy' ? HAPROXY_FILES.config : NGINX_FILES.config] ?? '';
  const seen = new Set<string>();
  const out: Listener[] = [];
  for (const m of text.matchAll(DIRECTIVE[kind])) {
    const listener = { address: m[1]!.replace(/^\[|\]$/g, '').toLowerCase(), port: Number(m[2]) };
    const key = formatListener(listener);
    if (listener.port < 1 || listener.port > 65535 || seen.has(key)) continue;
    seen.add(key);
    out.push(listener);
  }
  return out;
}

/** Listeners of `next` that `running` does not bind: the ones a reload opens anew. */
export function newListeners(next: readonly Listener[], running: readonly Listener[]): Listener[] {
  const held = new Set(running.map(formatListener));
  return next.filter((l) => !held.has(formatListener(l)));
}

export function formatListener(l: Listener): string {
  return l.address.includes(':') ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`;
}

/** One line per failed listener, in words an operator acts on. */
export function describeBindFailure(l: FailedListener): string {
  return l.reason === 'in-use'
    ? `port ${formatListener(l)} is in use on the node by another process`
    : `address ${l.address} is not configured on the node (cannot bind ${formatListener(l)})`;
}
