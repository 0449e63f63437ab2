import { z } from 'zod';
import { envSchema, type ConfigVariable } from '../src/config.js';

/**
 * The environment-variable table of docs/configuration.md. Names, defaults and accepted values come
 * from `src/config.ts` itself (the schema the control plane parses its environment with), so they
 * cannot drift; what each variable means is written here, one entry per variable. `npm run
 * docs:config` rewrites the table between the markers; test/unit/config.test.ts fails when the
 * file is not what this module generates, or when src/ reads a SWITCHYARD_* variable with no row.
 */

/** Which program reads a variable. */
export type Reader = 'control plane' | 'control plane, agent' | 'agent' | 'CLI';

interface Entry {
  readonly meaning: string;
  /** Overrides the accepted values derived from the schema, where a rule is not a bound. */
  readonly accepted?: string;
  /** Overrides "unset" for a variable without a schema default. */
  readonly whenUnset?: string;
  readonly readBy?: Reader;
}

/** The control plane's variables: every key of `envSchema`, in its order (tsc fails when one is missing). */
const CONTROL_PLANE: { readonly [K in ConfigVariable]: Entry } = {
  DATABASE_URL: {
    meaning:
      'PostgreSQL, as `postgres://user:pass@host:5432/db`. Unset: an embedded PGlite database under `SWITCHYARD_DATA_DIR/pg` (the first start creates it: see [First start](#first-start-on-the-embedded-database)).',
    accepted: 'a `postgres://` or `postgresql://` URL',
  },
  SWITCHYARD_DATA_DIR: {
    meaning:
      'Embedded database, secret key, and the generated admin token (`admin-token`, mode 0600; also with `DATABASE_URL`). A start that cannot write it fails (exit 1) and commits no token.',
  },
  HOST: {
    meaning: 'Where the REST API listens. Use `HOST=0.0.0.0` for agents on other machines.',
  },
  PORT: {
    meaning: 'The REST API port (`0`: any free port, logged at start).',
  },
  SWITCHYARD_ADMIN_TOKEN: {
    meaning:
      'A secret that is always a valid admin token (`bootstrap-admin`); change the variable to rotate it. Unset: an admin token is generated on the first start (when no admin token exists) and written to `SWITCHYARD_DATA_DIR/admin-token` only.',
  },
  SWITCHYARD_SECRET_KEY: {
    meaning:
      'Encrypts certificate private keys at rest (AES-256-GCM). Required with `DATABASE_URL`; the embedded default generates one in `SWITCHYARD_DATA_DIR/secret.key`. Replicas must share it. Losing it makes stored private keys unreadable.',
    accepted: '32 bytes, base64 or hex (`openssl rand -base64 32`)',
    whenUnset: 'generated (embedded only)',
  },
  LOG_LEVEL: {
    meaning: 'Logs are JSON lines (pino) with a request id.',
    readBy: 'control plane, agent',
  },
  SWITCHYARD_TOKEN_CACHE_MS: {
    meaning:
      'How long a resolved token is trusted before it is looked up again. A revoked token stops working at once on the replica that revoked it and within this time on the others.',
  },
  SWITCHYARD_LEADER_RETRY_MS: {
    meaning:
      'How often a replica that does not lead tries to take the leader lock (the leader alone runs the reconciler, poller, rebalancer and retention): a standby takes over within this time. See [Two replicas](fleet-and-reconciler.md#two-replicas).',
  },
  SWITCHYARD_RECONCILE: {
    meaning:
      'Run the fleet reconciler: build every node\'s config after each write, push runtime changes to HAProxy nodes through their Runtime API, record member health.',
  },
  SWITCHYARD_RECONCILE_INTERVAL_MS: {
    meaning: 'Safety-net pass over every node, besides the passes committed writes wake.',
  },
  SWITCHYARD_RECONCILE_RETRY_MAX_MS: {
    meaning: 'Cap of the exponential backoff after a failed pass on a node (a node that comes back is found within it).',
  },
  SWITCHYARD_DRAIN_TIMEOUT_MS: {
    meaning: 'How long a removed member drains before it goes to maintenance with sessions still attached; it is deleted once they end.',
  },
  SWITCHYARD_RELOAD_HOLD_RETRY_MS: {
    meaning:
      'First wait before a tenant held on a node (its new listener could not be bound there) is tried again; it doubles after each failed try, up to 30 times this (at most an hour). See [When a reload fails on one node](fleet-and-reconciler.md#when-a-reload-fails-on-one-node-only-the-tenant-that-caused-it-waits).',
  },
  SWITCHYARD_STATS: {
    meaning:
      'Run the stats poller on the leader (see [Traffic statistics](capacity.md#traffic-statistics)). Off: caps follow writes and the rebalance interval only, with no demand signal.',
  },
  SWITCHYARD_STATS_INTERVAL_S: {
    meaning:
      'Seconds between two stats polls; must divide 60 s or 60 min (1, 2, 5, 10, 15, 30, 60, 120, …). **Each poll is followed at once by a rebalance**, so this is also how often caps follow demand.',
  },
  SWITCHYARD_STATS_NODE_TIMEOUT_MS: {
    meaning: "How long one node's read may take; a slower node is skipped for that poll and holds up no other.",
  },
  SWITCHYARD_STATS_RAW_RETENTION_S: {
    meaning: 'How long raw samples are kept (1 h by default).',
  },
  SWITCHYARD_STATS_ROLLUP_RETENTION_S: {
    meaning: 'How long one-minute rollups are kept (7 days by default).',
  },
  SWITCHYARD_REBALANCE: {
    meaning: 'Run the rebalancer on the leader (see [Capacity](capacity.md)).',
  },
  SWITCHYARD_REBALANCE_INTERVAL_S: {
    meaning:
      'The longest time between two rebalance passes. With stats on, a pass follows every poll and after every write (debounced), so this fires only when polls stop.',
  },
  SWITCHYARD_HEARTBEAT_INTERVAL_S: {
    meaning:
      "The agents' heartbeat interval as the control plane counts it: a node silent for 3 of them is unhealthy (not converged; its caps are kept, it leaves placement). Match it to the agents' `--heartbeat` (10 s by default).",
  },
  SWITCHYARD_RELOAD_CAP_INTERVAL_S: {
    meaning:
      'On nodes where every cap change is a reload (no runtimeAddress: NGINX without a runtime channel, HAProxy without a Runtime API), cap changes are batched into at most one reload per this many seconds; a new tenant or a cap that must come down goes out at once.',
  },
  SWITCHYARD_PLACEMENT_REPLICAS: {
    meaning: 'Nodes each tenant is placed on, per proxy kind, where the fleet has them (see [Placement](capacity.md#placement-which-nodes-serve-a-tenant)).',
  },
  SWITCHYARD_AUDIT_RETENTION_DAYS: {
    meaning: 'Days the audit log is kept; `0` keeps it forever. The leader deletes older events hourly, in small batches.',
  },
  SWITCHYARD_ALLOCATION_HISTORY_RETENTION_DAYS: {
    meaning:
      'Days every cap change and its reason is kept (`GET /v1/tenants/{t}/allocation` history); `0` keeps it forever. Idempotency keys go once they can no longer be replayed (24 h).',
  },
  SWITCHYARD_AUTO_APPROVE_VCPU: {
    meaning:
      'With `SWITCHYARD_AUTO_APPROVE_MEMORY_MB`: registrations (and raises) by registrars whose reservation is within both are approved without an admin (see [Approval](api.md#approval)). Both unset: every one waits; one unset counts as 0.',
  },
  SWITCHYARD_AUTO_APPROVE_MEMORY_MB: {
    meaning: 'The memory half of the auto-approval policy above.',
  },
  SWITCHYARD_RUNTIME_CERT_DAYS: {
    meaning:
      "Lifetime of each node's Runtime API certificate and of the control plane's client certificate. Each is renewed in the last third of its lifetime, by the leader, without a reload or a dropped connection.",
  },
  SWITCHYARD_RUNTIME_CA_CERT: {
    meaning:
      'With `SWITCHYARD_RUNTIME_CA_KEY` (both or neither): a CA that issues the Runtime API certificates (see [mutual TLS](operating-nodes.md#the-runtime-api-is-reached-over-mutual-tls-only)). Unset: a CA is generated on the first start (10 years) and stored, its key sealed like certificate keys. A supplied CA is checked at start (a CA certificate whose key matches) and, the first time it is seen, becomes the issuing CA; earlier CAs stay trusted until they expire.',
    accepted: 'path to a PEM certificate',
  },
  SWITCHYARD_RUNTIME_CA_KEY: {
    meaning: "The supplied CA's own private key (see `SWITCHYARD_RUNTIME_CA_CERT`).",
    accepted: 'path to a PEM private key',
  },
};

/** Variables read outside `src/config.ts`: by the node agent and by the API client commands. */
const OTHERS: Readonly<Record<string, Entry & { readonly readBy: Reader; readonly default: string }>> = {
  SWITCHYARD_AGENT_TOKEN: {
    readBy: 'agent',
    default: 'unset',
    accepted: 'an agent token',
    meaning:
      "The node's agent token (`--token` also works, but `ps` shows flags); it reads only its own node's config. See [Running a node](operating-nodes.md).",
  },
  SWITCHYARD_URL: {
    readBy: 'CLI',
    default: '`http://127.0.0.1:8080`',
    accepted: 'a URL',
    meaning:
      'The control plane `apply`, `get` and `delete` talk to. For a private CA: `NODE_EXTRA_CA_CERTS=/path/ca.pem`. See [CLI and CI](cli-and-ci.md).',
  },
  SWITCHYARD_TOKEN: {
    readBy: 'CLI',
    default: 'unset (required)',
    accepted: 'an API token',
    meaning:
      'The token `apply`, `get` and `delete` send: `admin`, `operator` or `registrar` to register tenants; a `tenant-admin` token for its own tenant.',
  },
  SWITCHYARD_RETRIES: {
    readBy: 'CLI',
    default: '`3`',
    accepted: 'integer 0–99',
    meaning: 'How often `apply`, `get` and `delete` retry a network error or a `5xx` answer, with backoff.',
  },
};

const number = (n: number) => n.toLocaleString('en-US');

/** What the schema accepts, in words: bounds, lengths and enumerations. */
function accepted(name: ConfigVariable): string {
  const schema = (z.toJSONSchema(envSchema, { io: 'input', unrepresentable: 'any' }).properties ?? {})[name] as {
    type?: string;
    enum?: string[];
    minimum?: number;
    maximum?: number;
    minLength?: number;
    maxLength?: number;
  };
  if (schema.enum?.length === 6 && ['true', 'false', '1', '0', 'on', 'off'].every((v) => schema.enum!.includes(v))) {
    return '`true` or `false` (also `1`/`0`, `on`/`off`)';
  }
  if (schema.enum) return schema.enum.map((v) => `\`${v}\``).join(', ');
  if (schema.type === 'integer' || schema.type === 'number') {
    const kind = schema.type === 'integer' ? 'integer' : 'number';
    return `${kind} ${number(schema.minimum ?? 0)}–${number(schema.maximum ?? Number.MAX_SAFE_INTEGER)}`;
  }
  if (schema.minLength !== undefined && schema.maxLength !== undefined) return `${schema.minLength}–${schema.maxLength} characters`;
  return 'non-empty text';
}

/** The value loadConfig sees when the variable is unset, as the table prints it. */
function defaultOf(name: ConfigVariable, defaults: Record<string, unknown>): string {
  const value = defaults[name];
  if (value === undefined) return CONTROL_PLANE[name].whenUnset ?? 'unset';
  return `\`${String(value)}\``;
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** Every variable src/ reads, with its reader: the rows of the table. */
export function documentedVariables(): ReadonlyMap<string, Reader> {
  const out = new Map<string, Reader>();
  for (const name of Object.keys(envSchema.shape) as ConfigVariable[]) out.set(name, CONTROL_PLANE[name].readBy ?? 'control plane');
  for (const [name, entry] of Object.entries(OTHERS)) out.set(name, entry.readBy);
  return out;
}

/** The Markdown table, one row per variable: the control plane's in schema order, then the agent's and the CLI's. */
export function configTable(): string {
  const defaults = envSchema.parse({}) as Record<string, unknown>;
  const rows = ['| variable | read by | default | accepted | meaning |', '| --- | --- | --- | --- | --- |'];
  for (const name of Object.keys(envSchema.shape) as ConfigVariable[]) {
    const entry = CONTROL_PLANE[name];
    rows.push(`| \`${name}\` | ${entry.readBy ?? 'control plane'} | ${cell(defaultOf(name, defaults))} | ${cell(entry.accepted ?? accepted(name))} | ${cell(entry.meaning)} |`);
  }
  for (const [name, entry] of Object.entries(OTHERS)) {
    rows.push(`| \`${name}\` | ${entry.readBy} | ${cell(entry.default)} | ${cell(entry.accepted ?? '')} | ${cell(entry.meaning)} |`);
  }
  return rows.join('\n') + '\n';
}

export const TABLE_START = '<!-- config-table: generated by `npm run docs:config` from src/config.ts and scripts/config-table.ts; edit those, not this table -->';
export const TABLE_END = '<!-- config-table: end -->';

/** The document with the table between the markers replaced by `table`; throws when a marker is missing. */
export function withConfigTable(doc: string, table: string): string {
  const start = doc.indexOf(TABLE_START);
  const end = doc.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`docs/configuration.md lacks the markers ${TABLE_START} … ${TABLE_END}`);
  return doc.slice(0, start + TABLE_START.length) + '\n\n' + table + '\n' + doc.slice(end);
}
