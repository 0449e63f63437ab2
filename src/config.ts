import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { isSchedulable } from './util/cron-every.js';

/** Typed environment. Fails fast, naming the variable, before anything starts. */
export interface Config {
  /** PostgreSQL URL; absent means the embedded PGlite database under `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  /** When set, this secret is always a valid admin token (rotated by changing the variable). */
  readonly adminToken: string | undefined;
  /** 32-byte key for encrypting private keys at rest; absent: generated under dataDir (embedded only). */
  readonly secretKey: Buffer | undefined;
  readonly logLevel: string;
  /** How long a resolved bearer token is trusted before it is looked up again (ms). */
  readonly tokenCacheMs: number;
  /** How often a standby replica tries to take the leader lock (ms). */
  readonly leaderRetryMs: number;
  /** The fleet reconciler (config builds, Runtime API pushes, member health). */
  readonly reconcile: ReconcileConfig;
  /** The stats poller (HAProxy `show stat`, NGINX runtime-channel stats, into stat_samples and stat_rollups). */
  readonly stats: StatsConfig;
  /** The rebalancer (allocation of caps) and the node-health rule it uses. */
  readonly rebalance: RebalanceConfig;
  /** Registrations by registrars within this reservation are approved without an admin; null: none are. */
  readonly autoApproveUpTo: { vcpu: number; memoryMb: number } | null;
  /** How long the append-only tables keep their rows (see jobs/retention.ts). */
  readonly retention: RetentionConfig;
  /** The Runtime API's mutual TLS: certificate lifetime and an optional supplied CA. */
  readonly runtimeTls: RuntimeTlsConfig;
}

export interface RuntimeTlsConfig {
  /** Lifetime of node and control-plane certificates (days); each is renewed in its last third. */
  readonly certificateDays: number;
  /** A CA (PEM certificate and its key) to issue from instead of a generated one. */
  readonly suppliedCa: { readonly certificatePem: string; readonly keyPem: string } | undefined;
}

export interface RetentionConfig {
  /** Days the audit log is kept; 0 keeps it forever. */
  readonly auditDays: number;
  /** Days the allocation history is kept; 0 keeps it forever. */
  readonly allocationHistoryDays: number;
}

export interface ReconcileConfig {
  readonly enabled: boolean;
  /** Safety-net pass over every node, besides the passes committed writes wake (ms). */
  readonly intervalMs: number;
  /** Cap of the exponential backoff after a failed pass on a node (ms). */
  readonly retryMaxMs: number;
  /** How long a removed member drains before it goes to maintenance with sessions attached (ms). */
  readonly drainTimeoutMs: number;
  /**
   * First delay before a tenant held on a node (its new listener could not be bound there) is
   * tried again; it doubles on each failed try, up to 30 times this and at most an hour (ms).
   */
  readonly reloadHoldRetryMs: number;
}

export interface StatsConfig {
  readonly enabled: boolean;
  /** Seconds between polls: a divisor of 60 s or of 60 min (cron). */
  readonly intervalS: number;
  /** Longest wait for one node's `show stat` (ms); a slow node never holds up the others. */
  readonly nodeTimeoutMs: number;
  /** How long raw samples are kept (s). */
  readonly rawRetentionS: number;
  /** How long one-minute rollups are kept (s). */
  readonly rollupRetentionS: number;
}

export interface RebalanceConfig {
  readonly enabled: boolean;
  /** Seconds between passes (each also follows committed writes, debounced). */
  readonly intervalS: number;
  /** The agents' heartbeat interval (s): a node silent for 3 of them takes no new caps. */
  readonly heartbeatIntervalS: number;
  /** Nodes that reload for every cap change (NGINX, HAProxy without a Runtime API) change caps at most this often (s). */
  readonly reloadCadenceS: number;
  /** Nodes each tenant is placed on, per proxy kind, where the fleet allows. */
  readonly placementReplicas: number;
}

/** A path to a PEM file holding a block of this kind, read at start (a missing file fails fast). */
function pemFile(kind: string) {
  return z.string().transform((path, ctx) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `cannot read ${path}: ${(err as Error).message}` });
      return z.NEVER;
    }
    if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(text)) {
      ctx.addIssue({ code: 'custom', message: `${path} holds no PEM ${kind}` });
      return z.NEVER;
    }
    return text;
  });
}

const flag = z.enum(['true', 'false', '1', '0', 'on', 'off']).transform((v) => v === 'true' || v === '1' || v === 'on');

/** The environment the control plane reads, parsed and checked (docs/configuration.md is generated from it). */
export const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  SWITCHYARD_DATA_DIR: z.string().min(1).default('./data'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  SWITCHYARD_ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters').max(256).optional(),
  SWITCHYARD_SECRET_KEY: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return undefined;
      const key = /^[0-9a-fA-F]{64}$/.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
      if (key.length !== 32) {
        ctx.addIssue({ code: 'custom', message: 'must be 32 bytes, base64 or hex (openssl rand -base64 32)' });
        return z.NEVER;
      }
      return key;
    }),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SWITCHYARD_TOKEN_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(5_000),
  SWITCHYARD_LEADER_RETRY_MS: z.coerce.number().int().min(50).max(600_000).default(5_000),
  SWITCHYARD_RECONCILE: flag.default(true),
  SWITCHYARD_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
  SWITCHYARD_RECONCILE_RETRY_MAX_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  SWITCHYARD_DRAIN_TIMEOUT_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  SWITCHYARD_RELOAD_HOLD_RETRY_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
  SWITCHYARD_STATS: flag.default(true),
  SWITCHYARD_STATS_INTERVAL_S: z.coerce
    .number()
    .int()
    .min(1)
    .max(3600)
    .refine(isSchedulable, 'must divide 60 seconds or 60 minutes (1, 2, 5, 10, 15, 30, 60, 120, ...)')
    .default(10),
  SWITCHYARD_STATS_NODE_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
  SWITCHYARD_STATS_RAW_RETENTION_S: z.coerce
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .default(3_600),
  SWITCHYARD_STATS_ROLLUP_RETENTION_S: z.coerce
    .number()
    .int()
    .min(60)
    .max(400 * 86_400)
    .default(7 * 86_400),
  SWITCHYARD_REBALANCE: flag.default(true),
  SWITCHYARD_REBALANCE_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(10),
  SWITCHYARD_HEARTBEAT_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(10),
  SWITCHYARD_RELOAD_CAP_INTERVAL_S: z.coerce.number().int().min(0).max(86_400).default(300),
  SWITCHYARD_PLACEMENT_REPLICAS: z.coerce.number().int().min(1).max(64).default(2),
  SWITCHYARD_AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(365),
  SWITCHYARD_ALLOCATION_HISTORY_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  SWITCHYARD_AUTO_APPROVE_VCPU: z.coerce.number().min(0).max(1024).optional(),
  SWITCHYARD_AUTO_APPROVE_MEMORY_MB: z.coerce.number().int().min(0).max(4_194_304).optional(),
  SWITCHYARD_RUNTIME_CERT_DAYS: z.coerce.number().int().min(1).max(825).default(30),
  SWITCHYARD_RUNTIME_CA_CERT: pemFile('CERTIFICATE').optional(),
  SWITCHYARD_RUNTIME_CA_KEY: pemFile('PRIVATE KEY').optional(),
});

/** One environment variable the control plane reads. */
export type ConfigVariable = keyof typeof envSchema.shape;

/** Every environment variable the control plane reads (docs/configuration.md lists each). */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(envSchema.shape));

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if ((e.SWITCHYARD_RUNTIME_CA_CERT === undefined) !== (e.SWITCHYARD_RUNTIME_CA_KEY === undefined)) {
    throw new ConfigError(
      'invalid environment:\n  SWITCHYARD_RUNTIME_CA_CERT and SWITCHYARD_RUNTIME_CA_KEY go together: give both (a supplied CA) or neither (a generated one)',
    );
  }
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir: e.SWITCHYARD_DATA_DIR,
    host: e.HOST,
    port: e.PORT,
    adminToken: e.SWITCHYARD_ADMIN_TOKEN,
    secretKey: e.SWITCHYARD_SECRET_KEY,
    logLevel: e.LOG_LEVEL,
    tokenCacheMs: e.SWITCHYARD_TOKEN_CACHE_MS,
    leaderRetryMs: e.SWITCHYARD_LEADER_RETRY_MS,
    reconcile: {
      enabled: e.SWITCHYARD_RECONCILE,
      intervalMs: e.SWITCHYARD_RECONCILE_INTERVAL_MS,
      retryMaxMs: e.SWITCHYARD_RECONCILE_RETRY_MAX_MS,
      drainTimeoutMs: e.SWITCHYARD_DRAIN_TIMEOUT_MS,
      reloadHoldRetryMs: e.SWITCHYARD_RELOAD_HOLD_RETRY_MS,
    },
    stats: {
      enabled: e.SWITCHYARD_STATS,
      intervalS: e.SWITCHYARD_STATS_INTERVAL_S,
      nodeTimeoutMs: e.SWITCHYARD_STATS_NODE_TIMEOUT_MS,
      rawRetentionS: e.SWITCHYARD_STATS_RAW_RETENTION_S,
      rollupRetentionS: e.SWITCHYARD_STATS_ROLLUP_RETENTION_S,
    },
    rebalance: {
      enabled: e.SWITCHYARD_REBALANCE,
      intervalS: e.SWITCHYARD_REBALANCE_INTERVAL_S,
      heartbeatIntervalS: e.SWITCHYARD_HEARTBEAT_INTERVAL_S,
      reloadCadenceS: e.SWITCHYARD_RELOAD_CAP_INTERVAL_S,
      placementReplicas: e.SWITCHYARD_PLACEMENT_REPLICAS,
    },
    autoApproveUpTo:
      e.SWITCHYARD_AUTO_APPROVE_VCPU === undefined && e.SWITCHYARD_AUTO_APPROVE_MEMORY_MB === undefined
        ? null
        : { vcpu: e.SWITCHYARD_AUTO_APPROVE_VCPU ?? 0, memoryMb: e.SWITCHYARD_AUTO_APPROVE_MEMORY_MB ?? 0 },
    retention: {
      auditDays: e.SWITCHYARD_AUDIT_RETENTION_DAYS,
      allocationHistoryDays: e.SWITCHYARD_ALLOCATION_HISTORY_RETENTION_DAYS,
    },
    runtimeTls: {
      certificateDays: e.SWITCHYARD_RUNTIME_CERT_DAYS,
      suppliedCa:
        e.SWITCHYARD_RUNTIME_CA_CERT === undefined || e.SWITCHYARD_RUNTIME_CA_KEY === undefined
          ? undefined
          : { certificatePem: e.SWITCHYARD_RUNTIME_CA_CERT, keyPem: e.SWITCHYARD_RUNTIME_CA_KEY },
    },
  };
}
