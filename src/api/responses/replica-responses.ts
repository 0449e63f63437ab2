import { z } from 'zod';
import { timestamp } from './response-fields.js';

export const replicaStatusSchema = z
  .object({
    replica: z.string().describe('`host:pid:nonce`'),
    leader: z
      .boolean()
      .describe('Whether this replica leads the fleet jobs (reconciler, stats poller, rebalancer, retention)'),
    leaderSince: timestamp.nullable().describe('When this replica took the leader lock; null while it stands by'),
    version: z.string(),
  })
  .meta({ id: 'ReplicaStatus' });
