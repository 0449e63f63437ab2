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
}

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
  };
}
