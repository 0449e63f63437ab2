import type { ColumnType, Generated } from 'kysely';

/** Kysely's view of the tables in migrations/. Column names are the database's (snake_case). */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string, string>;
/** numeric and bigint arrive as strings from pg; repositories convert. */
type Numeric = ColumnType<string, number | string, number | string>;
type BigIntColumn = ColumnType<string, number | string | bigint, number | string | bigint>;

export interface RevisionCounterTable {
  id: Generated<number>;
  revision: BigIntColumn;
}

export interface TenantTable {
  id: string;
  display_name: string;
  state: string;
  reservation_vcpu: Numeric;
  reservation_memory_mb: number;
  limit_vcpu: Numeric;
  limit_memory_mb: number;
  weight: number;
  labels: Json<Record<string, string>>;
  /** Migration 0019: `haproxy`, `nginx`, or null for every kind the tenant's group has. */
  proxy_kind: ColumnType<string | null, string | null | undefined, string | null>;
  pending_capacity: Json<unknown> | null;
  approval_decided_by: string | null;
  approval_decided_at: Timestamp | null;
  approval_reason: string | null;
  revision: BigIntColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AddressPoolTable {
  name: string;
  cidr: string;
  revision: BigIntColumn;
  created_at: Timestamp;
}

export interface AddressLeaseTable {
  address: string;
  pool_name: string;
  tenant_id: string;
  vip_name: string;
  leased_at: Timestamp;
}

export interface CertificateTable {
  tenant_id: string;
  name: string;
  chain_pem: string;
  key_ciphertext: string;
  sans: Json<string[]>;
  subject: string;
  issuer: string;
  not_before: Timestamp;
  not_after: Timestamp;
  fingerprint_sha256: string;
  revision: BigIntColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CaBundleTable {
  tenant_id: string;
  name: string;
  pem: string;
  certificates: Json<unknown>;
  not_after: Timestamp;
  revision: BigIntColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PoolTable {
  tenant_id: string;
  name: string;
  algorithm: string;
  health_check: Json<unknown> | null;
  /** MemberTls, or null for plain members (0016). */
  tls: Json<unknown> | null;
  /** Generated from `tls`, for the foreign keys only: never written. */
  tls_ca_bundle: Generated<string | null>;
  tls_client_certificate: Generated<string | null>;
  revision: BigIntColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MemberTable {
  tenant_id: string;
  pool_name: string;
  name: string;
  address: string;
  port: number;
  weight: number;
  state: string;
  backup: boolean;
  revision: BigIntColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface VipTable {
  tenant_id: string;
  name: string;
  address: string;
  address_pool: string | null;
  port: number;
  protocol: string;
  hostnames: Json<string[]>;
  certificate: string | null;
  persistence: string;
  cookie_name: string;
  timeouts: Json<unknown>;
  allowlist: Json<string[]>;
  default_pool: string | null;
  revision: BigIntColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface RouteTable {
  tenant_id: string;
  vip_name: string;
  name: string;
  priority: number;
  match: Json<unknown>;
  pool_name: string;
  revision: BigIntColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface NodeTable {
  name: string;
  kind: string;
  node_group: string;
  zone: string;
  /** Migration 0019: the machine the node runs on; null: the node's own name. */
  host: ColumnType<string | null, string | null | undefined, string | null>;
  runtime_host: string | null;
  runtime_port: number | null;
  /** The HAProxy master CLI's TCP listener (`-S ipv4@host:port`); null: none. */
  master_host: ColumnType<string | null, string | null | undefined, string | null>;
  master_port: ColumnType<number | null, number | null | undefined, number | null>;
  capacity_vcpu: Numeric;
  capacity_memory_mb: number;
  config_dir: ColumnType<string, string | undefined, string>;
  /** Where the node's HAProxy keeps its admin and master sockets (unix, local only). */
  socket_dir: ColumnType<string, string | undefined, string>;
  applied_revision: BigIntColumn | null;
  last_heartbeat_at: Timestamp | null;
  applied_hash: string | null;
  applied_at: Timestamp | null;
  last_error: string | null;
  last_error_at: Timestamp | null;
  reload_count: ColumnType<number, number | undefined, number>;
  proxy_version: string | null;
  agent_version: string | null;
  runtime_revision: BigIntColumn | null;
  runtime_pending: ColumnType<number, number | undefined, number>;
  runtime_error: string | null;
  runtime_pushed_at: Timestamp | null;
  runtime_commands_sent: ColumnType<string, number | string | undefined, number | string>;
  runtime_commands_failed: ColumnType<string, number | string | undefined, number | string>;
  /** Why the leader took the node out of placement (missed heartbeats, Runtime API down); null: in. */
  placement_excluded_reason: ColumnType<string | null, string | null | undefined, string | null>;
  placement_excluded_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** When the current run of failing Runtime API pushes began; null while pushes succeed. */
  runtime_error_since: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** Bumped to ask the node's agent for a reload the structure alone would not ask for. */
  reload_generation: ColumnType<number, number | undefined, number>;
  reload_reason: string | null;
  /** VRRP (keepalived) settings; all null: the node renders no keepalived file (0018). */
  vrrp_interface: ColumnType<string | null, string | null | undefined, string | null>;
  vrrp_address: ColumnType<string | null, string | null | undefined, string | null>;
  vrrp_track_pid_file: ColumnType<string | null, string | null | undefined, string | null>;
  revision: BigIntColumn;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ApiTokenTable {
  id: Generated<string>;
  name: string;
  role: string;
  tenant_id: string | null;
  node_name: string | null;
  secret_hash: string;
  created_at: Timestamp;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
}

export interface AuditEventTable {
  id: Generated<BigIntColumn>;
  at: Timestamp;
  revision: BigIntColumn;
  actor: string;
  token_id: string | null;
  request_id: string;
  source_ip: string | null;
  tenant_id: string | null;
  action: string;
  resource_type: string;
  resource_id: string;
  before: Json<unknown> | null;
  after: Json<unknown> | null;
}

export interface IdempotencyKeyTable {
  token_id: string;
  key: string;
  method: string;
  path: string;
  request_hash: string;
  status: number | null;
  response: Json<unknown> | null;
  created_at: Timestamp;
}

export interface ConfigVersionTable {
  id: Generated<BigIntColumn>;
  node_name: string;
  revision: BigIntColumn;
  content_hash: string;
  /** The files as one sealed JSON object: rows stored before migration 0013; null on rows with a manifest. */
  files_sealed: string | null;
  /** File names and their segments' digests (services/config/config-manifest.ts); null on rows stored before 0013. */
  manifest: ColumnType<Buffer | null, Buffer | null | undefined, Buffer | null>;
  structural_hash: ColumnType<string, string | undefined, string>;
  /** The revision the version was first built at (`revision` grows as later writes leave it unchanged); null before 0015. */
  built_revision: ColumnType<BigIntColumn | null, number | null | undefined, number | null>;
  /** Hash per structural part (see domain/structural.ts structuralParts): says what a reload is for. */
  structural_parts: ColumnType<Record<string, string>, string | undefined, string>;
  /** The digests of the chunks (config segments) that hold the structural parts, 32 bytes each; null before 0023 and when stored with none. */
  structure_chunks: ColumnType<Buffer | null, Buffer | null | undefined, Buffer | null>;
  file_names: Json<string[]>;
  held_tenants: Json<unknown>;
  created_at: Timestamp;
}

/** One piece of a node's files, stored once however many versions and nodes use it (migration 0013). */
export interface ConfigSegmentTable {
  /** HMAC-SHA256 of the content under a key derived from the secret key (32 bytes). */
  digest: Buffer;
  /** The text, or its SecretBox seal when `sealed` (segments holding a private key). */
  content: string;
  sealed: boolean;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface TenantRenderStateTable {
  kind: string;
  tenant_id: string;
  good_state: Json<unknown> | null;
  good_revision: BigIntColumn | null;
  good_hash: string | null;
  error: string | null;
  error_revision: BigIntColumn | null;
  updated_at: Timestamp;
}

/** Each member's health as one node's proxy reports it (observed state: no revision, no audit). */
export interface MemberHealthTable {
  node_name: string;
  backend: string;
  member: string;
  tenant_id: string;
  pool: string;
  status: string;
  check_status: string | null;
  check_description: string | null;
  updated_at: Timestamp;
}

/** A tenant's caps on a node as last applied (migrations/0007). `reason` is per dimension. */
export interface AllocationTable {
  tenant_id: string;
  node_name: string;
  max_connections: number;
  requests_per_second: number;
  /** Migration 0012; null on rows stored before it. */
  connection_ceiling: number | null;
  weight: number;
  reason: Json<{ connections: string; requestsPerSecond: string }>;
  computed_at: Timestamp;
  revision: BigIntColumn;
}

/** One tenant placed on one node, with the reservation it was placed with. */
export interface PlacementTable {
  tenant_id: string;
  node_name: string;
  reservation_vcpu: Numeric;
  reservation_memory_mb: number;
  reason: string;
  placed_at: ColumnType<Date, Date | string | undefined, Date | string>;
  revision: BigIntColumn;
}

/** The reservations placed on a node, summed; kept by triggers on `placements` (migration 0022). */
export interface NodeBookingTable {
  node_name: string;
  vcpu: Numeric;
  memory_mb: BigIntColumn;
}

/** A VIP address's VRRP router in a node group: its virtual_router_id and sealed authentication secret. */
export interface VrrpRouterTable {
  node_group: string;
  address: string;
  vrid: number;
  auth_sealed: string;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

/** One cap change: from null for a tenant new on the node, to null when it left the node. */
export interface AllocationHistoryTable {
  id: Generated<string>;
  tenant_id: string;
  node_name: string;
  dimension: string;
  from_value: number | null;
  to_value: number | null;
  reason: string;
  detail: string;
  revision: BigIntColumn;
  at: Timestamp;
}

/** Raw traffic samples the stats poller reads from each HAProxy node (observed: no revision). */
export interface StatSampleTable {
  node_name: string;
  kind: string;
  tenant_id: string;
  proxy: string;
  name: string;
  pool: string | null;
  at: Timestamp;
  sessions: number;
  session_limit: number | null;
  session_rate: number;
  requests: BigIntColumn;
  responses_2xx: BigIntColumn;
  responses_4xx: BigIntColumn;
  responses_5xx: BigIntColumn;
  denied: BigIntColumn;
  request_rate: number | null;
  rate_2xx: number | null;
  rate_4xx: number | null;
  rate_5xx: number | null;
  denied_rate: number | null;
  /** Connections refused at the tenant's cap per second (migration 0011); null before it or without a previous read. */
  refused_rate: number | null;
  status: string | null;
  check_status: string | null;
  /** Bytes from and to clients per second, and the mean request time in ms (migration 0024); null before it, without a previous read, or where the proxy gives none. */
  bytes_in_rate: ColumnType<number | null, number | null | undefined, number | null>;
  bytes_out_rate: ColumnType<number | null, number | null | undefined, number | null>;
  latency_ms: ColumnType<number | null, number | null | undefined, number | null>;
}

/** One-minute rollups of stat_samples: sums and counts, upserted every poll. */
export interface StatRollupTable {
  node_name: string;
  kind: string;
  tenant_id: string;
  proxy: string;
  name: string;
  minute: Timestamp;
  samples: number;
  sessions_sum: number;
  sessions_max: number;
  rated: number;
  request_rate_sum: number;
  rate_2xx_sum: number;
  rate_4xx_sum: number;
  rate_5xx_sum: number;
  denied_rate_sum: number;
  session_limit: number | null;
  /** Migration 0024: sums of the samples' byte rates and latencies, and how many had a latency. */
  bytes_in_rate_sum: ColumnType<number, number | undefined, number>;
  bytes_out_rate_sum: ColumnType<number, number | undefined, number>;
  latency_ms_sum: ColumnType<number, number | undefined, number>;
  latency_samples: ColumnType<number, number | undefined, number>;
}

export interface Database {
  revision_counter: RevisionCounterTable;
  tenants: TenantTable;
  address_pools: AddressPoolTable;
  address_leases: AddressLeaseTable;
  certificates: CertificateTable;
  ca_bundles: CaBundleTable;
  pools: PoolTable;
  members: MemberTable;
  vips: VipTable;
  routes: RouteTable;
  nodes: NodeTable;
  api_tokens: ApiTokenTable;
  audit_events: AuditEventTable;
  idempotency_keys: IdempotencyKeyTable;
  config_versions: ConfigVersionTable;
  config_segments: ConfigSegmentTable;
  tenant_render_states: TenantRenderStateTable;
  member_health: MemberHealthTable;
  stat_samples: StatSampleTable;
  stat_rollups: StatRollupTable;
  allocations: AllocationTable;
  allocation_history: AllocationHistoryTable;
  placements: PlacementTable;
  node_bookings: NodeBookingTable;
  fleet_cas: FleetCaTable;
  fleet_certificates: FleetCertificateTable;
  vrrp_routers: VrrpRouterTable;
  reload_holds: ReloadHoldTable;
}

/** Switchyard's CAs for the Runtime API's mutual TLS; the newest issues. */
export interface FleetCaTable {
  id: Generated<number>;
  cert_pem: string;
  key_sealed: string;
  fingerprint: string;
  source: 'generated' | 'supplied';
  not_after: Timestamp;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

/** Certificates the fleet CA issued: each node's (`node:<name>`) and the control plane's (`control-plane`). */
export interface FleetCertificateTable {
  subject: string;
  node_name: string | null;
  ca_id: number;
  cert_pem: string;
  key_sealed: string;
  serial: string;
  not_before: Timestamp;
  not_after: Timestamp;
  issued_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** A tenant held on one node because its new listeners could not be bound there (migration 0020). */
export interface ReloadHoldTable {
  node_name: string;
  tenant_id: string;
  listeners: Json<unknown>;
  reason: string;
  attempts: ColumnType<number, number | undefined, number>;
  since: ColumnType<Date, Date | string | undefined, Date | string>;
  retry_at: ColumnType<Date, Date | string, Date | string>;
  good_known: ColumnType<boolean, boolean | undefined, boolean>;
  good_state: Json<unknown> | null;
}
