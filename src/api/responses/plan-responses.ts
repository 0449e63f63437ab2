import { z } from 'zod';
import { NODE_KINDS } from '../../domain/node.js';
import { heldTenantSchema } from './config-responses.js';

const runtimeSection = z.object({
  address: z.string(),
  reachable: z.boolean(),
  error: z.string().nullable(),
  commands: z
    .array(z.object({ command: z.string(), description: z.string() }))
    .describe('What would be sent now (a `<<` payload is never shown)'),
  pendingReload: z.array(z.string()).describe('Differences the live process keeps until its next reload'),
  inProgress: z.array(z.string()),
  notes: z.array(z.string()),
});

const nodePlan = z.object({
  node: z.string(),
  kind: z.enum(NODE_KINDS),
  converged: z.boolean(),
  waitingFor: z.string().nullable(),
  cause: z
    .enum(['agent_silent', 'runtime_api_failing', 'no_config', 'apply_failed', 'not_applied', 'runtime_pending'])
    .nullable(),
  desiredRevision: z.number().int().describe('The desired-state revision the plan reaches'),
  applied: z
    .object({
      revision: z.number().int().nullable(),
      contentHash: z.string().nullable(),
      structuralHash: z.string().nullable(),
    })
    .describe("What the node's agent last reported applying"),
  latest: z
    .object({ contentHash: z.string(), structuralHash: z.string(), heldTenants: z.array(heldTenantSchema) })
    .nullable()
    .describe('The config the node would be given now; null when it cannot be rendered (see error)'),
  error: z.string().nullable(),
  reload: z
    .object({ pending: z.boolean(), reasons: z.array(z.string()) })
    .describe('Whether the node must reload to converge, and why'),
  runtime: runtimeSection
    .nullable()
    .describe('HAProxy nodes with a Runtime API, NGINX nodes with a runtime channel: what would be sent now'),
});

export const fleetPlanSchema = z
  .object({ revision: z.number().int(), nodes: z.array(nodePlan) })
  .meta({ id: 'FleetPlan' });

/** What every write answers with `?dryRun=true` (mount.ts): nothing is stored, audited or pushed. */
export const dryRunOutcomeSchema = z
  .object({
    dryRun: z.literal(true),
    revision: z
      .number()
      .int()
      .describe('The revision the write would commit (the current one when it changes nothing)'),
    changed: z.boolean(),
    plan: fleetPlanSchema.describe('As GET /v1/plan, for the state the write would commit'),
  })
  .meta({ id: 'DryRun' });
