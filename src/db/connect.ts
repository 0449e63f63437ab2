import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { unavailableOnConnectionLoss } from './unavailable-pool.js';

/**
 * Anything that runs queries: the database or a transaction (a Transaction is a Kysely too).
 * Repositories take it first, so the caller owns the transaction.
 */
export type Db = Kysely<Database>;

/** Resolves when the database answers a trivial query (readiness); fails as any query would when it cannot. */
export async function ping(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}

export interface DatabaseHandle {
  readonly db: Db;
  /** 'postgres' for a server, 'pglite' for the embedded default. */
  readonly kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

/**
 * Opens the database: PostgreSQL when a URL is given, otherwise an embedded PGlite persisted
 * under `dataDir/pg`. PGlite is imported lazily so servers never pay for it.
 */
/** How long a request waits for a database connection (a new one, or a free one from the pool). */
const CONNECT_TIMEOUT_MS = 5_000;

export async function openDatabase(opts: {
  url?: string | undefined;
  dataDir: string;
  poolSize?: number;
  /**
   * A pooled connection failed (server restart, admin kill), idle or checked out: reported, never
   * an unhandled 'error' event. The pool drops it; a query it was running fails as UnavailableError.
   */
  onConnectionError?: (err: Error, state: 'idle' | 'in use') => void;
  /** Called before an embedded database is created in `dir` (PGlite's initdb: most of a first start). */
  onCreateEmbedded?: (dir: string) => void;
}): Promise<DatabaseHandle> {
  if (opts.url) {
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      // A database that does not answer (a host gone, a full server) fails the request as 503 with
      // Retry-After within 5 s, rather than holding it until the kernel gives up on the socket;
      // keep-alive finds a dead peer on an idle connection.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    });
    pool.on('error', (err) => opts.onConnectionError?.(err, 'idle'));
    // pg-pool listens for 'error' only while a client is idle; a client checked out when its
    // connection dies would otherwise emit an unhandled 'error' and take the process down.
    pool.on('connect', (client) => {
      client.on('error', (err) => {
        if (client.listenerCount('error') === 1) opts.onConnectionError?.(err, 'in use');
      });
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: unavailableOnConnectionLoss(pool) }) });
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  const dir = join(opts.dataDir, 'pg');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'PG_VERSION'))) opts.onCreateEmbedded?.(dir);
  const { PGlite } = await import('@electric-sql/pglite');
  const { createPgConfig } = await import('@electric-sql/pglite/node-postgres');
  const client = await PGlite.create(dir);
  const pool = new pg.Pool(createPgConfig(client) as unknown as pg.PoolConfig);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'pglite',
    close: async () => {
      await db.destroy();
      await client.close();
    },
  };
}
