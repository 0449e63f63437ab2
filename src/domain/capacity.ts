import type { NodeKind } from './node.js';
import type { Resources } from './tenant.js';

/**
 * What the proxies enforce, in their own units: concurrent connections (frontend `maxconn`) and
 * requests per second (the rate-limit threshold in the per-tenant map).
 */
export interface ResourceVector {
  readonly connections: number;
  readonly requestsPerSecond: number;
}

export const RESOURCE_DIMENSIONS = ['connections', 'requestsPerSecond'] as const;
export type ResourceDimension = (typeof RESOURCE_DIMENSIONS)[number];

/**
 * How declared resources turn into enforceable capacity. Connections are bounded by memory,
 * request rate by CPU; the two are converted independently.
 */
export interface CapacityFactors {
  /** Concurrent proxied connections per GB (1024 MB) of memory. */
  readonly connectionsPerGb: number;
  /** Requests per second per vCPU. */
  readonly requestsPerSecondPerVcpu: number;
}

/**
 * Defaults for HAProxy 2.6 on commodity x86 hardware, deliberately conservative:
 *
 * - `connectionsPerGb: 10_000` (about 100 KB per connection). A proxied connection holds two
 *   `tune.bufsize` buffers (16 KB each, request and response), the session and stream structures,
 *   TLS state when it terminates TLS (tens of KB) and the kernel's socket buffers on both sides.
 *   40–70 KB is typical; the rest is headroom so a node at its cap is not a node near an OOM kill.
 * - `requestsPerSecondPerVcpu: 10_000`. One HAProxy thread forwards well over 50k small keep-alive
 *   HTTP requests per second; TLS (mostly resumed sessions), header rules, stick-table tracking
 *   and logging bring a realistic mix down to 10–20k. New full TLS handshakes cost far more
 *   (1–2k/s per core for RSA-2048): operators whose tenants open many short TLS connections
 *   should lower this factor.
 *
 * With these, the seed's tenant A (2 vCPU / 4 GB) reserves 20,000 req/s and 40,000 connections.
 */
export const HAPROXY_CAPACITY_FACTORS: CapacityFactors = Object.freeze({
  connectionsPerGb: 10_000,
  requestsPerSecondPerVcpu: 10_000,
});

/**
 * NGINX as a reverse proxy has a similar per-connection memory profile (proxy buffers of 4–8 KB
 * each, several per connection) and a similar per-core request rate; the same numbers serve
 * until measured otherwise.
 */
export const NGINX_CAPACITY_FACTORS: CapacityFactors = Object.freeze({
  connectionsPerGb: 10_000,
  requestsPerSecondPerVcpu: 10_000,
});

/** Conversion factors per proxy kind: a node converts with its own kind's factors. */
export type CapacityModel = Readonly<Record<NodeKind, CapacityFactors>>;

export const DEFAULT_CAPACITY_MODEL: CapacityModel = Object.freeze({
  haproxy: HAPROXY_CAPACITY_FACTORS,
  nginx: NGINX_CAPACITY_FACTORS,
});

/**
 * Converts vCPU / memory MB into whole connections and whole requests per second, rounding down
 * so that a converted amount is never more than the resources behind it. Node capacity, tenant
 * reservations and limits all convert the same way, and because floor(a) + floor(b) ≤ floor(a + b),
 * reservations that fit a node in vCPU / MB still fit it once converted.
 */
export function toResourceVector(resources: Resources, factors: CapacityFactors): ResourceVector {
  // vCPU has at most 3 decimals: compute in milli-vCPU so 0.1 + 0.2 style errors cannot round down a whole unit.
  const milliVcpu = Math.round(resources.vcpu * 1000);
  return {
    connections: Math.floor((resources.memoryMb * factors.connectionsPerGb) / 1024 + 1e-9),
    requestsPerSecond: Math.floor((milliVcpu * factors.requestsPerSecondPerVcpu) / 1000 + 1e-9),
  };
}

/** Throws on factors that would make every conversion meaningless (not finite, negative). */
export function assertCapacityFactors(factors: CapacityFactors): void {
  for (const [key, value] of Object.entries(factors)) {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`capacity factor ${key} must be a finite number ≥ 0, got ${String(value)}`);
    }
  }
}
