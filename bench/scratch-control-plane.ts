import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startControlPlane, type ControlPlane } from '../src/main.js';
import type { Caller } from '../test/support/app.js';
import { scratchDatabase } from './support.js';

export interface ScratchControlPlane {
  readonly cp: ControlPlane;
  /** The admin token (for tools that call the API themselves, such as wrk scripts). */
  readonly token: string;
  /** Calls the API as the admin, with the shape the test helpers take. */
  readonly admin: Caller;
  /** Stops the control plane and drops its database. */
  stop(): Promise<void>;
}

/**
 * A control plane of a benchmark's own: a scratch PostgreSQL database, an admin token, `env` on
 * top. Logs errors only unless `env` sets LOG_LEVEL, and on stderr, so that stdout stays the benchmark's one JSON line.
 */
export async function startScratchControlPlane(
  name: string,
  env: Record<string, string>,
): Promise<ScratchControlPlane> {
  const db = await scratchDatabase(`sy_bench_${name}_${process.pid}`);
  const token = `sy_bench_${randomBytes(16).toString('hex')}`;
  let cp: ControlPlane;
  try {
    const config = loadConfig({
      DATABASE_URL: db.url,
      PORT: '0',
      SWITCHYARD_ADMIN_TOKEN: token,
      SWITCHYARD_SECRET_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'error',
      SWITCHYARD_LEADER_RETRY_MS: '100',
      ...env,
    });
    cp = await startControlPlane(config, createLogger(config.logLevel, 'stderr'));
  } catch (err) {
    await db.drop();
    throw err;
  }
  const admin: Caller = async (method, path, body) => {
    const res = await fetch(cp.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any, headers: res.headers };
  };
  return {
    cp,
    token,
    admin,
    stop: async () => {
      await cp.stop();
      await db.drop();
    },
  };
}
