/**
 * The part of a running HAProxy that the Runtime API can read and change, as plain data: what
 * the rendered config asks for (`DesiredRuntime`, projected by render/haproxy-runtime-view.ts
 * with the renderer's own names) and what the process holds now (`ObservedRuntime`, read by
 * fleet/observe-runtime.ts). Change planning compares the two.
 */

/** HAProxy's administrative server states, as `set server ... state` names them. */
export type ServerAdmin = 'ready' | 'drain' | 'maint';

export interface DesiredRuntime {
  readonly frontends: readonly DesiredFrontend[];
  readonly backends: readonly DesiredBackend[];
  readonly capsMap: DesiredMap;
  readonly certificates: readonly DesiredCertificate[];
  /** Objects of tenants whose part is still being validated: the plan neither changes nor removes them. */
  readonly leftAlone?: LeftAlone;
}

/**
 * What a node may hold for tenants whose part is still being validated (NodeSnapshot.unsettled),
 * under any of the names it may have had: the backends say whose members they hold, for health.
 */
export interface LeftAlone {
  readonly frontends: ReadonlySet<string>;
  readonly backends: readonly DesiredBackend[];
  readonly mapKeys: ReadonlySet<string>;
}

export interface DesiredFrontend {
  readonly name: string;
  readonly maxconn: number;
}

export interface DesiredBackend {
  readonly name: string;
  readonly tenant: string;
  readonly pool: string;
  /**
   * Members may be added and deleted at runtime. False behind cookie persistence: HAProxy 2.6
   * refuses `cookie` on `add server`, so those member sets stay structural (see structural.ts).
   */
  readonly dynamicMembers: boolean;
  /** The health check every server of the backend runs, or null for none. */
  readonly check: ServerCheck | null;
  /** TLS to every server of the backend, or null for plain members. */
  readonly tls: ServerTls | null;
  readonly servers: readonly DesiredServer[];
}

/** Check settings in the shape `add server` takes them; the renderer prints the same on server lines. */
export interface ServerCheck {
  readonly intervalMs: number;
  readonly rise: number;
  readonly fall: number;
  readonly port?: number;
  /** `check-ssl`: the check speaks TLS (always so for https and tcp checks of TLS members). */
  readonly ssl?: boolean;
  /** `no-check-ssl`: a plain http check of TLS members (on a plain health port). */
  readonly plain?: boolean;
  /** `verify none` for the check alone: only a state stored before TLS members existed (0016) asks for it. */
  readonly verifyNone?: boolean;
  readonly sni?: string;
  /** `check-alpn`: checks speak HTTP/1.1 even where traffic may negotiate h2. */
  readonly alpn?: string;
}

/** HAProxy's `sni` expression for the request's Host without its port (`field(1,:)`, as the host map does). */
export const SNI_FROM_HOST = 'req.hdr(host),field(1,:)';

/** TLS to a server in the shape `add server` takes it; the renderer prints the same on server lines. */
export interface ServerTls {
  readonly verify: 'required' | 'none';
  /** `ca-file`: an absolute path, or `@system-ca`; absent with `verify none`. */
  readonly caFile?: string;
  /** `sni`: a host name as a literal (`str(name)`) or the expression of the request's Host. */
  readonly sni?: string;
  /** `alpn`: comma-separated protocols. */
  readonly alpn?: string;
  /** `crt`: absolute path of the client certificate (chain then key). */
  readonly crt?: string;
}

export interface DesiredServer {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** The weight the config file gives (0 for a draining member). */
  readonly weight: number;
  readonly admin: ServerAdmin;
  readonly backup: boolean;
}

export interface DesiredMap {
  /** Absolute path, as the config names the map. */
  readonly file: string;
  /** Sorted by key. */
  readonly entries: readonly (readonly [string, string])[];
  /** Some frontend reads the map, so a running process has it loaded. */
  readonly referenced: boolean;
}

export interface DesiredCertificate {
  /** Absolute path, as the crt-list names it. */
  readonly file: string;
  /** Chain then key: the file's content and the `set ssl cert` payload. */
  readonly pem: string;
  /** SHA-1 of the leaf certificate, upper-case hex without separators, as `show ssl cert` prints it. */
  readonly fingerprint: string;
}

export interface ObservedRuntime {
  /** Names of every backend (proxy with a backend side) the process runs. */
  readonly backends: readonly string[];
  /** Each frontend's cap (`slim`) and its current sessions (`scur`; null when not read). */
  readonly frontends: readonly { readonly name: string; readonly maxconn: number; readonly sessions: number | null }[];
  readonly servers: readonly ObservedServer[];
  /** The rate-limit map's entries, or null when the process has not loaded that map. */
  readonly capsMap: readonly { readonly key: string; readonly value: string }[] | null;
  /** Leaf SHA-1 per certificate file asked about; null when the process does not hold that file. */
  readonly certificates: ReadonlyMap<string, string | null>;
}

export interface ObservedServer {
  readonly backend: string;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** The user weight (`srv_uweight`): what `set server ... weight` set, kept while draining. */
  readonly weight: number;
  readonly admin: ServerAdmin;
  /**
   * Whether it is a backup server; null when not read (every pass but previews skips it: a server
   * changing sides is a reload reason, never a runtime command).
   */
  readonly backup: boolean | null;
  /** Operational state: checks passing (or none) vs failing. */
  readonly running: boolean;
  /**
   * Sessions attached now (`scur`); null when not read. Passes read them only for servers being
   * taken out, the only ones whose sessions decide anything.
   */
  readonly sessions: number | null;
  /** Seconds since the server's last state change (admin or operational). */
  readonly secondsInState: number;
  /** The check verdict `show stat` prints as check_status (L7OK, L4CON, ...) and its description, when checks run. */
  readonly checkStatus: string | null;
  readonly checkDescription: string | null;
}
