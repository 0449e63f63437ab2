import { z } from 'zod';

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
  /** Registrations by registrars within this reservation are approved without an admin; null: none are. */
  readonly autoApproveUpTo: { vcpu: number; memoryMb: number } | null;
}

export interface ReconcileConfig {
  readonly enabled: boolean;
  /** Safety-net pass over every node, besides the passes committed writes wake (ms). */
  readonly intervalMs: number;
  /** Cap of the exponential backoff after a failed pass on a node (ms). */
  readonly retryMaxMs: number;
  /** How long a removed member drains before it goes to maintenance with sessions attached (ms). */
  readonly drainTimeoutMs: number;
}

const flag = z.enum(['true', 'false', '1', '0', 'on', 'off']).transform((v) => v === 'true' || v === '1' || v === 'on');

const envSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
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
  SWITCHYARD_AUTO_APPROVE_VCPU: z.coerce.number().min(0).max(1024).optional(),
  SWITCHYARD_AUTO_APPROVE_MEMORY_MB: z.coerce.number().int().min(0).max(4_194_304).optional(),
});

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
    },
    autoApproveUpTo:
      e.SWITCHYARD_AUTO_APPROVE_VCPU === undefined && e.SWITCHYARD_AUTO_APPROVE_MEMORY_MB === undefined
        ? null
        : { vcpu: e.SWITCHYARD_AUTO_APPROVE_VCPU ?? 0, memoryMb: e.SWITCHYARD_AUTO_APPROVE_MEMORY_MB ?? 0 },
  };
}
