/** The OpenAPI document's tags: every route names one, so each group of operations is described once. */
export const TAGS = {
  tenants: 'Tenants: registration, capacity (reservation, limit, weight), approval and convergence status',
  tokens: 'API tokens and their roles; a secret is shown once, when the token is created',
  'address-pools': 'CIDRs from which VIP addresses are leased, each address once (admins)',
  vips: "A tenant's virtual IPs: address, port, protocol, hostnames, certificate, persistence, timeouts, allowlist",
  routes: 'Content routes of a VIP (host, path prefix, header) to a pool, evaluated by priority',
  pools: 'Pools of members with their balancing algorithm, health check and TLS to members',
  members: "A pool's backend servers: address, port, weight, state, backup",
  certificates: 'TLS certificates a VIP serves; the private key is write-only',
  'ca-bundles': 'CA certificates the proxies trust when they verify TLS members',
  nodes: 'Proxy nodes (HAProxy, NGINX) and the reports of their agents',
  configs: "Rendered configuration: a node's files (its agent polls them) and a tenant's preview",
  fleet: 'What each node still needs: runtime commands and pending reloads',
  audit: 'Every write: who, when, from where, and the resource before and after',
  allocations: "Placement, each tenant's caps per node, rebalancing and the fleet's capacity",
  stats: "A tenant's traffic over time",
  operations: 'Probes, metrics and this document: for operators and their tools',
} as const;

export type Tag = keyof typeof TAGS;
