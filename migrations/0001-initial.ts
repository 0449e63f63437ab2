import { sql, type Kysely } from 'kysely';

/**
 * The desired state. Integrity lives here as well as in the API: slugs are checked, names are
 * unique per tenant, a VIP owns its (address, port), an address is leased once, and every foreign
 * key says on purpose what a delete does (RESTRICT where a delete would silently break traffic).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table revision_counter (
      id smallint primary key default 1 check (id = 1),
      revision bigint not null
    );
    insert into revision_counter (id, revision) values (1, 0);

    create table tenants (
      id text primary key check (id ~ '^[a-z][a-z0-9-]{0,62}$'),
      display_name text not null check (length(display_name) between 1 and 128),
      state text not null check (state in ('pending_approval', 'active', 'suspended')),
      reservation_vcpu numeric(10, 3) not null check (reservation_vcpu >= 0),
      reservation_memory_mb integer not null check (reservation_memory_mb >= 0),
      limit_vcpu numeric(10, 3) not null,
      limit_memory_mb integer not null,
      weight integer not null check (weight between 1 and 1000),
      labels jsonb not null default '{}'::jsonb,
      revision bigint not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (limit_vcpu >= reservation_vcpu and limit_memory_mb >= reservation_memory_mb)
    );
    create index tenants_labels_idx on tenants using gin (labels jsonb_path_ops);

    create table address_pools (
      name text primary key check (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      cidr cidr not null unique,
      revision bigint not null,
      created_at timestamptz not null default now()
    );

    create table certificates (
      tenant_id text not null references tenants (id) on delete cascade,
      name text not null check (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      chain_pem text not null,
      key_ciphertext text not null,
      sans jsonb not null,
      subject text not null,
      issuer text not null,
      not_before timestamptz not null,
      not_after timestamptz not null,
      fingerprint_sha256 text not null,
      revision bigint not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, name)
    );

    create table pools (
      tenant_id text not null references tenants (id) on delete cascade,
      name text not null check (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      algorithm text not null check (algorithm in ('roundrobin', 'leastconn', 'source')),
      health_check jsonb,
      revision bigint not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, name)
    );

    create table members (
      tenant_id text not null,
      pool_name text not null,
      name text not null check (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      address inet not null,
      port integer not null check (port between 1 and 65535),
      weight integer not null check (weight between 0 and 256),
      state text not null check (state in ('enabled', 'drain', 'disabled')),
      backup boolean not null default false,
      revision bigint not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, pool_name, name),
      unique (tenant_id, pool_name, address, port),
      foreign key (tenant_id, pool_name) references pools (tenant_id, name) on delete cascade
    );

    -- A VIP keeps its tenant alive (RESTRICT): deleting a tenant that still serves traffic is refused.
    -- Its pool and certificate cannot be deleted from under it either.
    create table vips (
      tenant_id text not null references tenants (id) on delete restrict,
      name text not null check (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      address inet not null,
      address_pool text references address_pools (name) on delete restrict,
      port integer not null check (port between 1 and 65535),
      protocol text not null check (protocol in ('http', 'https', 'tcp')),
      hostnames jsonb not null default '[]'::jsonb,
      certificate text,
      persistence text not null check (persistence in ('none', 'cookie', 'source')),
      cookie_name text not null,
      timeouts jsonb not null,
      allowlist jsonb not null default '[]'::jsonb,
      default_pool text,
      revision bigint not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, name),
      unique (address, port),
      foreign key (tenant_id, certificate) references certificates (tenant_id, name) on delete restrict,
      foreign key (tenant_id, default_pool) references pools (tenant_id, name) on delete restrict
    );

    -- One lease per address, ever; released when its VIP goes.
    create table address_leases (
      address inet primary key,
      pool_name text not null references address_pools (name) on delete restrict,
      tenant_id text not null,
      vip_name text not null,
      leased_at timestamptz not null default now(),
      unique (tenant_id, vip_name),
      foreign key (tenant_id, vip_name) references vips (tenant_id, name) on delete cascade
    );

    create table routes (
      tenant_id text not null,
      vip_name text not null,
      name text not null check (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      priority integer not null check (priority between 0 and 10000),
      match jsonb not null,
      pool_name text not null,
      revision bigint not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (tenant_id, vip_name, name),
      foreign key (tenant_id, vip_name) references vips (tenant_id, name) on delete cascade,
      foreign key (tenant_id, pool_name) references pools (tenant_id, name) on delete restrict
    );

    create table nodes (
      name text primary key check (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      kind text not null check (kind in ('haproxy', 'nginx')),
      node_group text not null,
      zone text not null,
      runtime_host inet,
      runtime_port integer check (runtime_port between 1 and 65535),
      capacity_vcpu numeric(10, 3) not null check (capacity_vcpu >= 0),
      capacity_memory_mb integer not null check (capacity_memory_mb >= 0),
      applied_revision bigint,
      last_heartbeat_at timestamptz,
      revision bigint not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (runtime_host, runtime_port),
      check ((runtime_host is null) = (runtime_port is null))
    );

    create table api_tokens (
      id uuid primary key default gen_random_uuid(),
      name text not null unique,
      role text not null check (role in ('admin', 'operator', 'tenant-admin', 'tenant-viewer', 'registrar', 'agent')),
      tenant_id text references tenants (id) on delete cascade,
      node_name text references nodes (name) on delete cascade,
      secret_hash text not null unique,
      created_at timestamptz not null default now(),
      expires_at timestamptz,
      last_used_at timestamptz,
      check ((role in ('tenant-admin', 'tenant-viewer')) = (tenant_id is not null)),
      check ((role = 'agent') = (node_name is not null))
    );

    -- Audit rows outlive what they describe: no foreign keys on purpose.
    create table audit_events (
      id bigserial primary key,
      at timestamptz not null default now(),
      revision bigint not null,
      actor text not null,
      token_id uuid,
      request_id text not null,
      source_ip text,
      tenant_id text,
      action text not null,
      resource_type text not null,
      resource_id text not null,
      before jsonb,
      after jsonb
    );
    create index audit_events_tenant_idx on audit_events (tenant_id, id);
    create index audit_events_at_idx on audit_events (at);

    create table idempotency_keys (
      token_id uuid not null,
      key text not null,
      method text not null,
      path text not null,
      request_hash text not null,
      status integer,
      response jsonb,
      created_at timestamptz not null default now(),
      primary key (token_id, key)
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table idempotency_keys, audit_events, api_tokens, nodes, routes, address_leases, vips,
      members, pools, certificates, address_pools, tenants, revision_counter;
  `.execute(db);
}
