import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus metric the control plane exports, in one registry per process (tests build
 * their own). Names follow Prometheus conventions: base units, `_total` counters.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'switchyard_http_request_duration_seconds',
    help: 'REST API request latency by route template, method and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 120],
    registers: [this.registry],
  });

  readonly renderDuration = new Histogram({
    name: 'switchyard_config_build_duration_seconds',
    help: 'Time to render, validate (real binary) and store one node configuration',
    labelNames: ['kind'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly heldTenants = new Gauge({
    name: 'switchyard_held_tenants',
    help: 'Tenants served at an older state on a node because their current state failed validation',
    labelNames: ['node'] as const,
    registers: [this.registry],
  });

  readonly reconcileDuration = new Histogram({
    name: 'switchyard_reconcile_duration_seconds',
    help: 'One reconcile pass over one node: build, observe, plan, push',
    labelNames: ['node'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });

  readonly runtimeCommands = new Counter({
    name: 'switchyard_runtime_commands_total',
    help: 'HAProxy Runtime API commands sent and NGINX runtime channel entries pushed, by node and outcome (ok, error, not_executed)',
    labelNames: ['node', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly reloads = new Gauge({
    name: 'switchyard_node_reloads',
    help: 'Reloads each node has reported applying',
    labelNames: ['node'] as const,
    registers: [this.registry],
  });

  readonly nodesConverged = new Gauge({
    name: 'switchyard_nodes',
    help: 'Nodes by convergence: converged (alive, running the latest config, nothing pending) or behind',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  readonly nodeConverged = new Gauge({
    name: 'switchyard_node_converged',
    help: 'Whether each node is converged (1) or not (0), with why not as reason (agent_silent, runtime_api_failing, no_config, apply_failed, not_applied, runtime_pending)',
    labelNames: ['node', 'reason'] as const,
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: 'switchyard_leader',
    help: 'Whether this control-plane replica holds the leader lock and runs the fleet jobs (1) or stands by (0)',
    registers: [this.registry],
  });

  readonly tenantAllocation = new Gauge({
    name: 'switchyard_tenant_allocation',
    help: "A tenant's enforced caps summed over its nodes, by resource (connections, requests_per_second)",
    labelNames: ['tenant', 'resource'] as const,
    registers: [this.registry],
  });

  readonly tenantUsage = new Gauge({
    name: 'switchyard_tenant_usage',
    help: "A tenant's observed use summed over its nodes, by resource (connections, requests_per_second)",
    labelNames: ['tenant', 'resource'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'switchyard_' });
    // prom-client names three gauges with a counter's `_total` suffix, which promtool rejects.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      this.registry.removeSingleMetric(`switchyard_${name}`);
    }
  }

  /**
   * Sets the per-node gauges from every node's stored status: its convergence verdict (see
   * domain/node-convergence.ts) and the reloads its agent reported. Called before each scrape, from
   * the database, so every replica answers alike whichever one the agents report to.
   */
  recordNodes(
    nodes: readonly {
      readonly name: string;
      readonly status: { readonly converged: boolean; readonly cause: string | null; readonly reloadCount: number };
    }[],
  ): void {
    this.nodeConverged.reset();
    this.nodesConverged.reset();
    this.reloads.reset();
    let converged = 0;
    for (const n of nodes) {
      this.nodeConverged.set({ node: n.name, reason: n.status.cause ?? '' }, n.status.converged ? 1 : 0);
      this.reloads.set({ node: n.name }, n.status.reloadCount);
      if (n.status.converged) converged++;
    }
    this.nodesConverged.set({ state: 'converged' }, converged);
    this.nodesConverged.set({ state: 'behind' }, nodes.length - converged);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
