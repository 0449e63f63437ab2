import type { BackoffPolicy } from '../util/backoff.js';
import type { Db } from '../db/connect.js';
import { AddressPoolService } from './address-pool-service.js';
import { AllocationService } from './allocation-service.js';
import { StatsDemandSource } from './stats-demand.js';
import { AuditService } from './audit-service.js';
import { StatusService } from './status-service.js';
import { StatsService } from './stats-service.js';
import { CaBundleService } from './ca-bundle-service.js';
import { CertificateService } from './certificate-service.js';
import { ConfigService } from './config/config-service.js';
import type { ChangeSource } from './config/long-poll-wakeups.js';
import { RENDERERS } from './config/kind-renderer.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { ReplicaStatus } from './replica-status.js';
import type { ApprovalPolicy } from '../domain/approval.js';
import { MemberService } from './member-service.js';
import { NodeService } from './node-service.js';
import type { ReadCache } from './read-cache.js';
import { PlanService } from './plan-service.js';
import { PlacementService } from './placement-service.js';
import { PoolService } from './pool-service.js';
import { RouteService } from './route-service.js';
import { RuntimePlanner, type RuntimeExecutors } from './runtime-planner.js';
import { NginxRuntimePlanner } from './nginx-runtime-planner.js';
import type { NginxChannels } from '../fleet/nginx-runtime/nginx-channel-pool.js';
import { TenantService } from './tenant-service.js';
import { TokenService } from './token-service.js';
import { VipService } from './vip-service.js';
import { FleetPki } from './fleet-pki.js';
import type { RuntimeTlsConfig } from '../config.js';

export interface ServiceOptions {
  readonly tokenCacheMs: number;
  /** 32-byte key that encrypts private keys at rest. */
  readonly secretKey: Buffer;
  /** Emptied by every commit; see read-cache.ts. */
  readonly cache: ReadCache;
  readonly logger: Logger;
  /** Committed revisions (long polls wait on it). */
  readonly changes: ChangeSource;
  readonly metrics: Metrics;
  /** Which registrations and capacity raises wait for an admin. */
  readonly approval: ApprovalPolicy;
  /** One long-lived Runtime API client per HAProxy node, shared by plans and the reconciler. */
  readonly runtimeClients: RuntimeExecutors;
  /** One long-lived runtime channel client per NGINX node, shared by plans and the reconciler. */
  readonly nginxChannels: NginxChannels;
  /** How long a removed member drains before it is forced into maintenance (ms). */
  readonly drainTimeoutMs: number;
  /** See ReconcileConfig.reloadHoldRetryMs; default 10 s. */
  readonly reloadHoldRetryMs?: number;
  /** The agents' heartbeat interval (node health, convergence) and the rebalancer's reload cadence (ms); defaults: 10 s, 5 min. */
  readonly allocation?: { readonly heartbeatIntervalMs: number; readonly reloadCadenceMs: number };
  /** Nodes per tenant and proxy kind where the fleet allows (default 2). */
  readonly placementReplicas?: number;
  /** How long raw stat samples are kept (s): older windows are answered from rollups. */
  readonly statsRawRetentionS?: number;
  /** The Runtime API's mutual TLS (certificate lifetime, supplied CA); defaults: 30 days, a generated CA. */
  readonly runtimeTls?: RuntimeTlsConfig;
}

/** The use cases, built once by the composition root. */
export interface Services {
  readonly tenants: TenantService;
  readonly tokens: TokenService;
  readonly addressPools: AddressPoolService;
  readonly vips: VipService;
  readonly routes: RouteService;
  readonly pools: PoolService;
  readonly members: MemberService;
  readonly certificates: CertificateService;
  readonly caBundles: CaBundleService;
  readonly nodes: NodeService;
  readonly configs: ConfigService;
  readonly audit: AuditService;
  readonly status: StatusService;
  readonly metrics: Metrics;
  /** This replica's id and leadership, for GET /v1/status and the switchyard_leader gauge. */
  readonly replica: ReplicaStatus;
  readonly runtime: RuntimePlanner;
  /** NGINX nodes' runtime channels: what they hold and the push that brings them to a snapshot. */
  readonly nginxRuntime: NginxRuntimePlanner;
  readonly plans: PlanService;
  readonly allocations: AllocationService;
  readonly placement: PlacementService;
  readonly stats: StatsService;
  /** Switchyard's CA and the Runtime API certificates it issues. */
  readonly pki: FleetPki;
}

/** Tries of a held tenant: the first after `initialMs`, doubling, at most 30 times that (and an hour). */
function reloadHoldBackoff(initialMs: number): BackoffPolicy {
  return { initialMs, factor: 2, maxMs: Math.min(3_600_000, initialMs * 30) };
}

export function createServices(db: Db, opts: ServiceOptions): Services {
  const pki = new FleetPki(db, opts.secretKey, {
    certificateDays: opts.runtimeTls?.certificateDays ?? 30,
    caDays: 3650,
    supplied: opts.runtimeTls?.suppliedCa,
    logger: opts.logger.child({ component: 'runtime-pki' }),
  });
  const configs = new ConfigService(
    db,
    opts.secretKey,
    RENDERERS,
    opts.logger.child({ component: 'config' }),
    opts.changes,
    opts.metrics,
    undefined,
    pki,
  );
  const runtime = new RuntimePlanner(opts.runtimeClients, {
    drainTimeoutMs: opts.drainTimeoutMs,
    observeTimeoutMs: 5_000,
  });
  const nginxRuntime = new NginxRuntimePlanner(opts.nginxChannels);
  const heartbeatIntervalMs = opts.allocation?.heartbeatIntervalMs ?? 10_000;
  const placement = new PlacementService(db, { replicas: opts.placementReplicas, heartbeatIntervalMs });
  return {
    placement,
    tenants: new TenantService(db, opts.cache, placement, opts.approval),
    tokens: new TokenService(db, opts.tokenCacheMs),
    addressPools: new AddressPoolService(db),
    vips: new VipService(db),
    routes: new RouteService(db),
    pools: new PoolService(db),
    members: new MemberService(db),
    certificates: new CertificateService(db, opts.secretKey),
    caBundles: new CaBundleService(db),
    nodes: new NodeService(
      db,
      placement,
      heartbeatIntervalMs,
      reloadHoldBackoff(opts.reloadHoldRetryMs ?? 10_000),
      pki,
    ),
    audit: new AuditService(db),
    status: new StatusService(db, heartbeatIntervalMs),
    metrics: opts.metrics,
    replica: new ReplicaStatus(),
    configs,
    runtime,
    nginxRuntime,
    plans: new PlanService(db, configs, runtime, nginxRuntime, heartbeatIntervalMs),
    allocations: new AllocationService(db, {
      heartbeatIntervalMs: 10_000,
      reloadCadenceMs: 300_000,
      ...opts.allocation,
      demand: new StatsDemandSource(),
      metrics: opts.metrics,
    }),
    stats: new StatsService(db, { rawRetentionS: opts.statsRawRetentionS ?? 3600 }),
    pki,
  };
}
