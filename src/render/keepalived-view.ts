import type { VrrpInstance } from '../domain/vrrp.js';
import { safe, safeInt, UnsafeValueError } from './guard.js';

/** What a node's keepalived file is rendered from: its VRRP settings and instances (domain/vrrp.ts). */
export interface KeepalivedInput {
  readonly node: string;
  readonly interface: string;
  readonly sourceAddress: string;
  /** The proxy master's pid file: the track script checks that process is alive. */
  readonly trackPidFile: string;
  readonly instances: readonly VrrpInstance[];
  /** VIP addresses served here that VRRP does not move, each with why (printed as comments). */
  readonly notCovered: readonly { readonly address: string; readonly reason: string }[];
}

export interface KeepalivedView {
  readonly routerId: string;
  readonly interface: string;
  readonly sourceAddress: string;
  readonly trackScript: string;
  readonly instances: readonly VrrpInstance[];
  readonly notCovered: readonly string[];
}

const INTERFACE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const AUTH_PASS_RE = /^[A-Za-z0-9]{8}$/;

/**
 * Every value checked again before it reaches the file: the track script is a shell command, so
 * the pid file must be a plain absolute path (guard `file`: no quote, space or `$`).
 */
export function toKeepalivedView(input: KeepalivedInput): KeepalivedView {
  const iface = input.interface;
  if (!INTERFACE_RE.test(iface)) throw new UnsafeValueError('vrrp.interface', iface, 'an interface name');
  const pidFile = safe('file', 'vrrp.trackPidFile', input.trackPidFile);
  return {
    routerId: safe('name', 'node', input.node),
    interface: iface,
    sourceAddress: safe('ip', 'vrrp.address', input.sourceAddress),
    // `kill -0` delivers no signal: it succeeds while the process exists (and we may signal it).
    trackScript: `/bin/sh -c 'kill -0 $(cat ${pidFile} 2>/dev/null) 2>/dev/null'`,
    instances: input.instances.map((i) => {
      if (!AUTH_PASS_RE.test(i.authPass)) throw new UnsafeValueError('auth_pass', '(withheld)', '8 letters or digits');
      return {
        name: safe('name', 'vrrp instance', i.name),
        vrid: safeInt('virtual_router_id', i.vrid, 1, 255),
        priority: safeInt('priority', i.priority, 1, 254),
        peers: i.peers.map((p) => safe('ip', 'vrrp peer', p)),
        alone: i.alone,
        authPass: i.authPass,
        address: safe('ip', 'vip address', i.address),
      };
    }),
    notCovered: input.notCovered.map((n) => `${safe('ip', 'vip address', n.address)} (${n.reason})`),
  };
}
