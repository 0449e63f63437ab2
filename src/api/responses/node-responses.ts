import { z } from 'zod';
import { NODE_KINDS } from '../../domain/node.js';
import { pageOf, resources, timestamp } from './response-fields.js';

const runtimeAddress = z.object({ host: z.string(), port: z.number().int() });

const nodeFields = {
  name: z.string(),
  kind: z.enum(NODE_KINDS),
  group: z.string(),
  zone: z.string(),
  host: z.string().describe("The machine the node's proxy runs on"),
  runtimeAddress: runtimeAddress
    .nullable()
    .describe("Where the control plane reaches the HAProxy Runtime API's mutual-TLS listener, or null"),
  masterAddress: runtimeAddress
    .nullable()
    .describe("Where the control plane reaches the HAProxy master CLI's mutual-TLS listener, or null"),
  socketDir: z.string(),
  runtimeCertificate: z
    .object({ serial: z.string(), notBefore: timestamp, notAfter: timestamp, issuedAt: timestamp })
    .nullable()
    .describe('The certificate the node presents on its Runtime API (never its key), or null before one is issued'),
  capacity: resources,
  configDir: z.string(),
  vrrp: z
    .object({ interface: z.string(), address: z.string(), trackPidFile: z.string().nullable() })
    .nullable()
    .describe('VRRP settings (keepalived), or null'),
  capabilities: z.object({
    runtimeApi: z.boolean(),
    activeHealthChecks: z.boolean(),
    cookiePersistence: z.enum(['insert', 'hash']),
    hitlessMemberChanges: z.boolean(),
  }),
  appliedRevision: z.number().int().nullable(),
  lastHeartbeatAt: timestamp.nullable(),
  placementExcluded: z
    .object({ reason: z.string(), since: timestamp })
    .nullable()
    .describe('Set while the leader keeps the node out of placement (missed heartbeats, Runtime API down)'),
  reloadRequest: z.object({ generation: z.number().int(), reason: z.string().nullable() }),
  status: z
    .object({
      desiredRevision: z.number().int().nullable(),
      desiredHash: z.string().nullable(),
      appliedHash: z.string().nullable(),
      appliedAt: timestamp.nullable(),
      reloadCount: z.number().int(),
      proxyVersion: z.string().nullable(),
      agentVersion: z.string().nullable(),
      lastError: z
        .string()
        .nullable()
        .describe("The validator's or the proxy's own message from the last failed apply, until an apply succeeds"),
      lastErrorAt: timestamp.nullable(),
      runtime: z.object({
        revision: z.number().int().nullable(),
        pending: z.number().int(),
        error: z.string().nullable(),
        errorSince: timestamp.nullable(),
        pushedAt: timestamp.nullable(),
        commandsSent: z.number().int(),
        commandsFailed: z.number().int(),
      }),
      converged: z.boolean(),
      waitingFor: z.string().nullable(),
      cause: z
        .enum(['agent_silent', 'runtime_api_failing', 'no_config', 'apply_failed', 'not_applied', 'runtime_pending'])
        .nullable(),
    })
    .describe('What the node reported and was pushed, and whether that makes it converged'),
  revision: z.number().int(),
  createdAt: timestamp,
  updatedAt: timestamp,
};

export const proxyNodeSchema = z.object(nodeFields).meta({ id: 'Node' });

export const proxyNodePageSchema = pageOf(proxyNodeSchema, 'NodePage');

export const registeredNodeSchema = z
  .object({
    ...nodeFields,
    agentToken: z
      .string()
      .nullable()
      .describe("The secret of the node's agent token, shown in this answer only (null in an Idempotency-Key replay)"),
  })
  .meta({ id: 'RegisteredNode' });
