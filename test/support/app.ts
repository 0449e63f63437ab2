import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startControlPlane, type ControlPlane } from '../../src/main.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { OpenApiConformance } from './openapi-conformance.js';

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export type Caller = <T = any>(
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<ApiResponse<T>>;

export interface TestApp {
  readonly cp: ControlPlane;
  readonly url: string;
  readonly database: TestDatabase;
  readonly adminToken: string;
  /** The SWITCHYARD_SECRET_KEY this control plane runs with (base64), for CLI processes on the same database. */
  readonly secretKey: string;
  /** Calls the API as the admin. */
  readonly admin: Caller;
  /** Calls the API with any token (or none). */
  as(token: string | null): Caller;
  /** Creates a token through the API and returns its secret. */
  token(role: string, scope?: { tenant?: string; node?: string }): Promise<string>;
  stop(): Promise<void>;
}

/** The real control plane, in-process on port 0, over a fresh PostgreSQL database of its own. */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const database = await createTestDatabase();
  const adminToken = `sy_test_admin_${randomBytes(16).toString('hex')}`;
  const secretKey = randomBytes(32).toString('base64');
  const config = loadConfig({
    DATABASE_URL: database.url,
    PORT: '0',
    HOST: '127.0.0.1',
    SWITCHYARD_ADMIN_TOKEN: adminToken,
    SWITCHYARD_SECRET_KEY: secretKey,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    SWITCHYARD_TOKEN_CACHE_MS: '0',
    // The reconciler builds configs and dials Runtime APIs in the background: tests opt in.
    SWITCHYARD_RECONCILE: 'false',
    // So does the rebalancer (it writes allocations on its own schedule).
    SWITCHYARD_REBALANCE: 'false',
    // Likewise the stats poller (show stat on every node, every interval).
    SWITCHYARD_STATS: 'false',
    ...env,
  });
  const cp = await startControlPlane(config, createLogger(config.logLevel));
  // Every answer is checked against the OpenAPI document this server publishes.
  let conformance: Promise<OpenApiConformance> | undefined;
  const document = () =>
    (conformance ??= fetch(`${cp.url}/openapi.json`).then(
      async (res) => new OpenApiConformance((await res.json()) as Record<string, any>),
    ));
  const as =
    (token: string | null): Caller =>
    async (method, path, body, headers = {}) => {
      const res = await fetch(cp.url + path, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON: keep the text */
      }
      const problem = (await document()).problem({
        method,
        path: new URL(path, cp.url).pathname,
        status: res.status,
        contentType: res.headers.get('content-type'),
        body: parsed,
        headers: res.headers,
      });
      if (problem !== null) throw new Error(`the answer does not match the OpenAPI document: ${problem}`);
      return { status: res.status, body: parsed as any, headers: res.headers };
    };
  let seq = 0;
  return {
    cp,
    url: cp.url,
    database,
    adminToken,
    secretKey,
    admin: as(adminToken),
    as,
    token: async (role, scope = {}) => {
      const res = await as(adminToken)('POST', '/v1/tokens', {
        name: `t-${role}-${scope.tenant ?? scope.node ?? 'all'}-${++seq}`,
        role,
        tenant: scope.tenant ?? null,
        node: scope.node ?? null,
      });
      if (res.status !== 201) throw new Error(`token creation failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.secret as string;
    },
    stop: async () => {
      await cp.stop();
      await database.drop();
    },
  };
}
