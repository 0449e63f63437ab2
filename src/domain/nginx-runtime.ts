import { createHash } from 'node:crypto';

/**
 * The part of a running NGINX node that its Lua runtime channel can read and change without a
 * reload, as plain data and as the JSON the channel speaks. One definition for every side: the
 * renderer writes the node's full desired state as `runtime-state.json` (a complete `StatePush`,
 * loaded at start and after every reload), the reconciler pushes the same shape over the mTLS
 * channel, and the Lua module (templates/nginx/lua/switchyard/) stores it in shared dictionaries.
 *
 * Wire protocol (HTTP/1.1 + JSON on the node's runtime address, client certificate required):
 * - `GET  /switchyard/v1/state` → `HeldState`: what the node holds, as per-upstream hashes (cheap at 10,000 upstreams).
 * - `POST /switchyard/v1/state` with a `StatePush` → `PushReply`. Applied key by key; an entry
 *   older than the one held (lower revision) is refused as stale, so a slow push never undoes a newer one.
 * - `GET  /switchyard/v1/stats` → `NginxStats`: counters since the shared dictionaries were made
 *   (they survive reloads), active requests, and each peer's health.
 * Errors: 400 (body not a StatePush, with the field), 403 (no verified client certificate),
 * 404 (unknown path), 405 (method), 507 (a dictionary is full: nothing of that entry was changed).
 */

/** How an upstream picks a peer for a request with no persistence. */
export type NginxAlgorithm = 'roundrobin' | 'leastconn' | 'source';

/** A peer's administrative state, as HAProxy names it: drain takes only persistent requests, maint none. */
export type NginxPeerAdmin = 'ready' | 'drain' | 'maint';

export interface NginxPeer {
  /** The member's name: unique in its upstream, the key of its health and stats. */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** 0-256 as on HAProxy; 0 takes no new requests (persistent ones still land). */
  readonly weight: number;
  readonly admin: NginxPeerAdmin;
  /** Used only while no non-backup peer can take the request. */
  readonly backup: boolean;
  /** The value a persistence cookie holds for this peer (the same one HAProxy sets), or null without cookie persistence. */
  readonly cookie: string | null;
}

/** Active checks, run once per node (not once per worker) by the node's privileged agent. */
export interface NginxHealthCheck {
  readonly type: 'http' | 'https' | 'tcp';
  /** http/https: the request path. */
  readonly path: string;
  /** http/https: the Host header sent, or null (then the peer's address). */
  readonly host: string | null;
  /** http/https: the statuses that count as up, as inclusive ranges ([[200, 399]]). */
  readonly expectedStatus: readonly (readonly [low: number, high: number])[];
  /** Another port than the peer's, or null. */
  readonly port: number | null;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Consecutive successes that bring a down peer up, failures that take an up peer down. */
  readonly rise: number;
  readonly fall: number;
}

/** One `upstream` block's runtime half: everything the Lua balancer reads per request. */
export interface NginxUpstream {
  readonly tenant: string;
  readonly pool: string;
  readonly algorithm: NginxAlgorithm;
  /** Cookie persistence: the cookie's name, or null. A request naming an available peer goes to it. */
  readonly cookie: string | null;
  readonly healthCheck: NginxHealthCheck | null;
  /** Sorted by name. */
  readonly peers: readonly NginxPeer[];
}

/** A tenant's share of the node, changed at run time by the rebalancer (see TenantAllocation). */
export interface NginxCaps {
  /** Requests in flight for the whole tenant on this node; one more is refused with 503. */
  readonly maxConnections: number;
  /** Requests admitted per second for the whole tenant on this node; more are refused with 429. */
  readonly requestsPerSecond: number;
}

/** The whole runtime half of a node: what `runtime-state.json` holds. */
export interface NginxRuntimeState {
  /** The configuration revision it was built from: held entries of a higher revision are kept. */
  readonly revision: number;
  /** By upstream name (the name in `proxy_pass`, as the rendered config writes it). */
  readonly upstreams: Readonly<Record<string, NginxUpstream>>;
  /** By tenant id. */
  readonly caps: Readonly<Record<string, NginxCaps>>;
}

/** An upstream or caps entry as pushed: its content, its revision and its hash (see hashes below). */
export interface Versioned<T> {
  readonly revision: number;
  /** 16 hex characters of SHA-256 over the entry's JSON; what GET /state reports back. */
  readonly hash: string;
  readonly value: T;
}

/** `POST /switchyard/v1/state`. */
export interface StatePush {
  /** True: the push is the node's whole state, and held entries it does not name are removed. */
  readonly complete: boolean;
  readonly upstreams: Readonly<Record<string, Versioned<NginxUpstream>>>;
  readonly caps: Readonly<Record<string, Versioned<NginxCaps>>>;
  /**
   * The configuration revision a complete push stands for (runtime-state.json carries it): what
   * `HeldState.fileRevision` reports, and the revision at which a complete push removes the held
   * entries it does not name (a held entry of a higher revision is kept, and reported stale).
   * Without it, the newest entry's revision.
   */
  readonly revision?: number;
  /** Partial pushes: entries to remove (each removal at `removedAt` revision, stale-checked like a change). */
  readonly removed?: {
    readonly upstreams: readonly string[];
    readonly caps: readonly string[];
    readonly revision: number;
  };
}

export interface PushReply {
  /** Entries now held as pushed (changed, or already equal). */
  readonly applied: number;
  /** Entries refused because the node holds a newer revision. */
  readonly stale: readonly string[];
  /** Entries that could not be stored (a full dictionary), with why; what was held for them is unchanged. */
  readonly failed: readonly { readonly key: string; readonly error: string }[];
}

/** `GET /switchyard/v1/state`. */
export interface HeldState {
  readonly upstreams: Readonly<Record<string, { readonly revision: number; readonly hash: string }>>;
  readonly caps: Readonly<Record<string, { readonly revision: number; readonly hash: string }>>;
  /** The revision of the `runtime-state.json` the workers last loaded (0: none). */
  readonly fileRevision: number;
}

/** Monotonic counters since the dictionaries were made; they survive reloads. */
export interface NginxCounters {
  readonly requests: number;
  readonly responses2xx: number;
  readonly responses3xx: number;
  readonly responses4xx: number;
  readonly responses5xx: number;
  /** Refused by the tenant's request-rate cap (429, also counted in responses4xx). */
  readonly denied: number;
  /** Refused by the tenant's connection cap (503, also counted in responses5xx). */
  readonly refused: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Sum of request times (ms) over `requests`, for a mean latency between two reads. */
  readonly latencyMsSum: number;
}

export type NginxPeerHealth = 'up' | 'down' | 'unchecked';

/** `GET /switchyard/v1/stats`. Names are the runtime state's: tenant ids, VIP names, upstream and peer names. */
export interface NginxStats {
  /** The node's clock (ms since the epoch) when read. */
  readonly now: number;
  /** Per VIP (`<tenant>/<vip>`): what clients sent it. */
  readonly vips: Readonly<
    Record<string, NginxCounters & { readonly tenant: string; readonly vip: string; readonly active: number }>
  >;
  /** Per upstream name. */
  readonly upstreams: Readonly<
    Record<string, NginxCounters & { readonly tenant: string; readonly pool: string; readonly active: number }>
  >;
  /** Per `<upstream>/<peer>`. */
  readonly peers: Readonly<
    Record<
      string,
      NginxCounters & {
        readonly upstream: string;
        readonly peer: string;
        readonly active: number;
        readonly health: NginxPeerHealth;
        /** The last check's outcome in words (`HTTP 200`, `timeout`, `connection refused`), or null. */
        readonly lastCheck: string | null;
      }
    >
  >;
  /** Per tenant: requests in flight against its caps. */
  readonly tenants: Readonly<Record<string, { readonly active: number; readonly requestsPerSecond: number }>>;
  /**
   * Writes each dictionary had no room for, since it was made (`sy_stats`: counters never created,
   * so those objects under-count; `sy_live`: in-flight or rate counts not kept, so caps fail open;
   * `sy_health`: verdicts not stored). Nothing held is evicted to make room. Optional: added by the
   * Lua module after the contract was first written.
   */
  readonly overflow?: Readonly<Record<'sy_stats' | 'sy_live' | 'sy_health', number>>;
}

/** What the control plane needs of a node's channel; fleet/nginx-runtime implements it over mTLS. */
export interface NginxRuntimeChannel {
  held(): Promise<HeldState>;
  push(body: StatePush): Promise<PushReply>;
  stats(): Promise<NginxStats>;
  close(): void;
}

/** 16 hex characters of SHA-256 over a value's JSON: tells two versions of an entry apart. */
export function entryHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

export function versioned<T>(value: T, revision: number): Versioned<T> {
  return { revision, hash: entryHash(value), value };
}

/** A node's whole runtime state as one complete push: what `runtime-state.json` holds. */
export function completePush(state: NginxRuntimeState): StatePush {
  const upstreams: Record<string, Versioned<NginxUpstream>> = {};
  for (const [name, u] of Object.entries(state.upstreams)) upstreams[name] = versioned(u, state.revision);
  const caps: Record<string, Versioned<NginxCaps>> = {};
  for (const [tenant, c] of Object.entries(state.caps)) caps[tenant] = versioned(c, state.revision);
  return { complete: true, revision: state.revision, upstreams, caps };
}
