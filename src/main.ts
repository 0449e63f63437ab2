import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { createApp } from './api/app.js';
import { HandlersRunning } from './api/mount.js';
import { RetentionJob } from './jobs/retention.js';
import { allRoutes } from './api/registry.js';
import { ConfigError, type Config } from './config.js';
import { openDatabase, ping, type DatabaseHandle } from './db/connect.js';
import { migrateToLatest, migrationsPending } from './db/migrate.js';
import type { Logger } from './logger.js';
import { VERSION } from './version.js';
import { RuntimeClientPool } from './fleet/runtime-api/runtime-client-pool.js';
import { RuntimeClientTls } from './fleet/runtime-api/connection/runtime-client-tls.js';
import { NginxChannelPool } from './fleet/nginx-runtime/nginx-channel-pool.js';
import { CertificateRenewalJob } from './jobs/certificate-renewal.js';
import { Reconciler } from './jobs/reconciler.js';
import { LeaderElector } from './jobs/leader.js';
import { Rebalancer } from './jobs/rebalancer.js';
import { StatsPoller } from './jobs/stats-poller.js';
import { Metrics } from './metrics.js';
import { ChangeFeed } from './services/change-feed.js';
import { onCommit } from './services/mutation.js';
import type { CapturedState } from './services/plan-service.js';
import { ReadCache } from './services/read-cache.js';
import { createServices, type Services } from './services/services.js';

/** The composition root: the only place that builds concrete objects. */
export interface ControlPlane {
  readonly url: string;
  readonly server: Server;
  readonly services: Services;
  readonly feed: ChangeFeed;
  readonly database: DatabaseHandle;
  /** Where this start saved the admin token it generated (mode 0600), if it generated one. */
  readonly adminTokenFile: string | undefined;
  /** The fleet reconciler, or null when SWITCHYARD_RECONCILE is off. */
  readonly reconciler: Reconciler | null;
  /** The stats poller, or null when SWITCHYARD_STATS is off; it runs while this replica leads. */
  readonly statsPoller: StatsPoller | null;
  /** The rebalancer, or null when SWITCHYARD_REBALANCE is off; it runs while this replica leads. */
  readonly rebalancer: Rebalancer | null;
  /** Trims the audit log, allocation history and expired idempotency keys while this replica leads. */
  readonly retention: RetentionJob;
  /** Whether this replica holds the fleet-jobs leader lock. */
  readonly leader: LeaderElector;
  /** Renews the Runtime API certificates while this replica leads. */
  readonly certificates: CertificateRenewalJob;
  /** The Runtime API clients (mutual TLS) the reconciler, plans and the stats poller share. */
  readonly runtimeClients: RuntimeClientPool;
  /** The NGINX runtime channel clients (mutual TLS, the same certificates), shared the same way. */
  readonly nginxChannels: NginxChannelPool;
  /** Loads the newest client certificate now (a renewal on this replica does it itself). */
  refreshRuntimeTls(): Promise<void>;
  stop(): Promise<void>;
}

export async function openAndMigrate(config: Config, logger: Logger): Promise<DatabaseHandle> {
  const started = Date.now();
  if (!config.databaseUrl) {
    logger.info({ dataDir: resolve(config.dataDir) }, 'DATABASE_URL is not set: using the embedded PGlite database');
  }
  let creating: number | undefined;
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    onConnectionError: (err, state) =>
      logger.warn({ err, state }, 'a database connection failed; the pool replaces it'),
    onCreateEmbedded: (dir) => {
      creating = Date.now();
      logger.info(
        { dir },
        'creating the embedded database (first start only; see docs/configuration.md for how long it takes)',
      );
    },
  });
  if (creating !== undefined) logger.info({ ms: Date.now() - creating }, 'embedded database created');
  const result = await migrateToLatest(database.db, undefined, ({ migration, n, total }) =>
    logger.info({ migration, n, total }, `applying migrations ${n}/${total}`),
  );
  const applied = (result.results ?? []).map((r) => r.migrationName);
  logger.info({ applied, ms: Date.now() - started, database: database.kind }, 'database ready');
  return database;
}

/** The database, the change feed and the use cases: everything but the HTTP server (the CLI uses this alone). */
export interface Core {
  readonly database: DatabaseHandle;
  readonly feed: ChangeFeed;
  readonly services: Services;
  readonly metrics: Metrics;
  /** One Runtime API connection per HAProxy node, shared by plans and the reconciler. */
  readonly runtimeClients: RuntimeClientPool;
  /** One runtime channel client per NGINX node, shared by plans and the reconciler. */
  readonly nginxChannels: NginxChannelPool;
  /** The control plane's client certificate for the nodes' mTLS listeners (reloaded when renewed). */
  readonly runtimeTls: RuntimeClientTls;
  /** Loads the newest client certificate from the database (after a renewal, and every minute). */
  refreshRuntimeTls(): Promise<void>;
  close(): Promise<void>;
}

/** How often a replica looks for a renewed client certificate: far within the third of its lifetime left at renewal. */
const CLIENT_TLS_REFRESH_MS = 60_000;

export async function openCore(config: Config, logger: Logger): Promise<Core> {
  const secretKey = config.secretKey ?? embeddedSecret(config);
  const database = await openAndMigrate(config, logger);
  const feed = new ChangeFeed(config.databaseUrl, logger.child({ component: 'change-feed' }));
  const cache = new ReadCache(10_000, feed.connected);
  onCommit(database.db, (revision) => feed.committed(revision));
  feed.on('change', () => cache.invalidate());
  feed.on('connected', (up) => cache.setEnabled(up));
  await feed.start();
  const metrics = new Metrics();
  // A node that comes back is found within the reconciler's retry cap, not the client's default.
  const runtimeTls = new RuntimeClientTls();
  const runtimeClients = new RuntimeClientPool({
    batchTimeoutMs: 10_000,
    backoff: { maxMs: config.reconcile.retryMaxMs },
    tls: runtimeTls,
  });
  // NGINX nodes' runtime channels: the same client certificate and CA, read at each new connection.
  const nginxChannels = new NginxChannelPool(runtimeTls);
  const services = createServices(database.db, {
    tokenCacheMs: config.tokenCacheMs,
    secretKey,
    cache,
    logger,
    changes: feed,
    metrics,
    approval: { autoApproveUpTo: config.autoApproveUpTo },
    runtimeClients,
    nginxChannels,
    drainTimeoutMs: config.reconcile.drainTimeoutMs,
    reloadHoldRetryMs: config.reconcile.reloadHoldRetryMs,
    allocation: {
      heartbeatIntervalMs: config.rebalance.heartbeatIntervalS * 1000,
      reloadCadenceMs: config.rebalance.reloadCadenceS * 1000,
    },
    statsRawRetentionS: config.stats.rawRetentionS,
    placementReplicas: config.rebalance.placementReplicas,
    runtimeTls: config.runtimeTls,
  });
  feed.on('change', () => services.tokens.forgetCached());
  // The CA and this control plane's client certificate exist before anything connects to a node.
  await services.pki.ensureCa();
  await services.pki.ensureClientCertificate();
  const refreshRuntimeTls = async () => {
    const credentials = await services.pki.clientCredentials();
    if (credentials !== null && runtimeTls.update(credentials))
      logger.info({ serial: credentials.serial }, 'Runtime API client certificate loaded');
  };
  await refreshRuntimeTls();
  const refresher = setInterval(() => {
    refreshRuntimeTls().catch((err: unknown) =>
      logger.warn({ err }, 'cannot load the Runtime API client certificate; the current one stays in use'),
    );
  }, CLIENT_TLS_REFRESH_MS);
  refresher.unref();
  return {
    database,
    feed,
    services,
    metrics,
    runtimeClients,
    nginxChannels,
    runtimeTls,
    refreshRuntimeTls,
    close: async () => {
      clearInterval(refresher);
      nginxChannels.close();
      await runtimeClients.close();
      await feed.stop();
      await database.close();
    },
  };
}

export async function startControlPlane(config: Config, logger: Logger): Promise<ControlPlane> {
  const { database, feed, services, metrics, runtimeClients, nginxChannels, runtimeTls, refreshRuntimeTls, close } =
    await openCore(config, logger);
  const adminTokenPath = resolve(config.dataDir, 'admin-token');
  const admin = await services.tokens.ensureAdmin(config.adminToken, (secret) => {
    try {
      writeSecretFile(adminTokenPath, secret);
    } catch (err) {
      throw new ConfigError(
        `cannot save the generated admin token in ${adminTokenPath} (${(err as Error).message}): make SWITCHYARD_DATA_DIR writable, or set SWITCHYARD_ADMIN_TOKEN`,
      );
    }
  });
  const adminTokenFile = admin.generated ? adminTokenPath : undefined;

  const handlers = new HandlersRunning();
  const app = createApp({
    handlers,
    logger,
    version: VERSION,
    metrics,
    routes: allRoutes(services),
    auth: services.tokens,
    tenantExists: (id) => services.tenants.exists(id),
    dryRun: {
      capture: (trx) => services.plans.capture(trx),
      plan: (captured) =>
        captured === null ? services.plans.current() : services.plans.planFor(captured as CapturedState),
    },
    ready: async () => {
      await ping(database.db);
      const pending = await migrationsPending(database.db);
      if (pending.length > 0) throw new Error(`migrations pending: ${pending.join(', ')}`);
    },
  });
  const server = await new Promise<Server>((ok, fail) => {
    const s = app.listen(config.port, config.host, () => ok(s));
    s.once('error', fail);
  });
  server.keepAliveTimeout = 65_000;
  // Requests still being handled when we stop must finish before the database goes away.
  let inFlight = 0;
  server.on('request', (_req, res: import('node:http').ServerResponse) => {
    inFlight++;
    res.once('close', () => inFlight--);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url }, 'switchyard control plane listening');
  const reconciler = config.reconcile.enabled
    ? new Reconciler(
        {
          db: database.db,
          configs: services.configs,
          runtime: services.runtime,
          nginx: services.nginxRuntime,
          changes: feed,
          clients: {
            retain: (nodes) => {
              runtimeClients.retain(nodes);
              nginxChannels.retain(nodes);
            },
          },
          logger: logger.child({ component: 'reconciler' }),
          metrics,
        },
        {
          intervalMs: config.reconcile.intervalMs,
          backoff: { initialMs: 200, maxMs: config.reconcile.retryMaxMs, factor: 2 },
        },
      )
    : null;
  const statsPoller = config.stats.enabled
    ? new StatsPoller(
        {
          db: database.db,
          clients: runtimeClients,
          nginxChannels,
          tls: runtimeTls,
          logger: logger.child({ component: 'stats-poller' }),
          metrics,
        },
        config.stats,
      )
    : null;
  const rebalancer = config.rebalance.enabled
    ? new Rebalancer(
        {
          allocations: services.allocations,
          placement: services.placement,
          changes: feed,
          logger: logger.child({ component: 'rebalancer' }),
        },
        { intervalMs: config.rebalance.intervalS * 1000 },
      )
    : null;
  const retention = new RetentionJob(
    {
      db: database.db,
      logger: logger.child({ component: 'retention' }),
      sweepSegments: () => services.configs.sweepSegments(),
    },
    config.retention,
  );
  const certificates = new CertificateRenewalJob({
    pki: services.pki,
    logger: logger.child({ component: 'runtime-pki' }),
    renewed: refreshRuntimeTls,
  });
  // Only the leader runs fleet jobs; the others take over within one retry interval if it dies.
  const leader = new LeaderElector(config.databaseUrl, logger.child({ component: 'leader' }), config.leaderRetryMs);
  leader.on('elected', () => services.replica.setLeader(true));
  leader.on('deposed', () => services.replica.setLeader(false));
  leader.on('elected', () => reconciler?.start());
  leader.on('deposed', () => void reconciler?.stop());
  leader.on('elected', () => statsPoller?.start());
  leader.on('deposed', () => void statsPoller?.stop());
  // Caps follow demand one poll later at most: each stored poll is followed by a rebalance pass.
  statsPoller?.onPolled(() => rebalancer?.afterPoll());
  leader.on('elected', () => rebalancer?.start());
  leader.on('deposed', () => void rebalancer?.stop());
  leader.on('elected', () => retention.start());
  leader.on('deposed', () => void retention.stop());
  leader.on('elected', () => certificates.start());
  leader.on('deposed', () => void certificates.stop());
  leader.start();
  return {
    url,
    server,
    services,
    feed,
    database,
    adminTokenFile,
    reconciler,
    rebalancer,
    retention,
    statsPoller,
    leader,
    certificates,
    runtimeClients,
    nginxChannels,
    refreshRuntimeTls,
    stop: async () => {
      services.configs.close();
      await leader.stop();
      // Closing the Runtime API clients fails a push in flight at once instead of waiting out its timeout.
      const reconciling = reconciler?.stop();
      await rebalancer?.stop();
      await retention.stop();
      await certificates.stop();
      const polling = statsPoller?.stop();
      nginxChannels.close();
      await runtimeClients.close();
      await reconciling;
      await polling;
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      server.closeIdleConnections();
      const deadline = Date.now() + 10_000;
      // Open responses, and handlers whose client hung up (a write still committing): both before the database closes.
      while ((inFlight > 0 || handlers.count > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      server.closeAllConnections();
      await closed;
      await close();
    },
  };
}

/**
 * Writes a secret readable by its owner only: into a fresh file (mode 0600, in a directory made
 * 0700 if missing) renamed over `path`, so an older file's looser mode never applies to it.
 */
function writeSecretFile(path: string, secret: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const staging = `${path}.${process.pid}.new`;
  writeFileSync(staging, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(staging, path);
}

/**
 * The embedded default keeps its encryption key beside its database, generated once. With a
 * PostgreSQL server the key must come from SWITCHYARD_SECRET_KEY: keeping it next to the data
 * it protects would defeat the point.
 */
function embeddedSecret(config: Config): Buffer {
  if (config.databaseUrl) {
    throw new ConfigError(
      'SWITCHYARD_SECRET_KEY is required with DATABASE_URL (it encrypts private keys at rest); create one with: openssl rand -base64 32',
    );
  }
  mkdirSync(config.dataDir, { recursive: true });
  const path = join(config.dataDir, 'secret.key');
  if (!existsSync(path)) writeFileSync(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new ConfigError(`${path} does not hold a 32-byte base64 key; restore it from backup`);
  return key;
}
