import { z } from 'zod';
import { cookieName, hostPattern, ipAddress, millis, port, slug, sourceRange } from './fields.js';

export const VIP_PROTOCOLS = ['http', 'https', 'tcp'] as const;
export type VipProtocol = (typeof VIP_PROTOCOLS)[number];
export const PERSISTENCE_TYPES = ['none', 'cookie', 'source'] as const;
export type Persistence = (typeof PERSISTENCE_TYPES)[number];

export interface VipTimeouts {
  readonly clientMs: number;
  readonly serverMs: number;
  readonly connectMs: number;
}

export interface Vip {
  readonly name: string;
  readonly address: string;
  /** The address pool the address was leased from, or null when it was given explicitly. */
  readonly addressPool: string | null;
  readonly port: number;
  readonly protocol: VipProtocol;
  readonly hostnames: readonly string[];
  readonly certificate: string | null;
  readonly persistence: Persistence;
  readonly cookieName: string;
  readonly timeouts: VipTimeouts;
  readonly allowlist: readonly string[];
  readonly defaultPool: string | null;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export const DEFAULT_TIMEOUTS: VipTimeouts = { clientMs: 30_000, serverMs: 30_000, connectMs: 5_000 };
export const DEFAULT_COOKIE = 'SRVID';

const timeouts = z.strictObject({
  clientMs: millis(1, 3_600_000).default(DEFAULT_TIMEOUTS.clientMs),
  serverMs: millis(1, 3_600_000).default(DEFAULT_TIMEOUTS.serverMs),
  connectMs: millis(1, 600_000).default(DEFAULT_TIMEOUTS.connectMs),
});

/** Everything a VIP may hold; shared by create and by the merged result of a patch. */
const vipBody = {
  port,
  protocol: z.enum(VIP_PROTOCOLS),
  hostnames: z.array(hostPattern).max(100).default([]),
  certificate: slug.nullable().default(null),
  persistence: z.enum(PERSISTENCE_TYPES).default('none'),
  cookieName: cookieName.default(DEFAULT_COOKIE),
  timeouts: timeouts.default(DEFAULT_TIMEOUTS),
  allowlist: z.array(sourceRange).max(256).default([]),
  defaultPool: slug.nullable().default(null),
};

type VipShape = {
  protocol: VipProtocol;
  hostnames: string[];
  certificate: string | null;
  persistence: Persistence;
};

/** Cross-field rules that hold for every VIP, whether created or patched. */
export function checkVipInvariants(v: VipShape, ctx: z.RefinementCtx): void {
  if (v.protocol === 'https' && v.certificate === null) {
    ctx.addIssue({ code: 'custom', path: ['certificate'], message: 'an https VIP needs a certificate' });
  }
  if (v.protocol !== 'https' && v.certificate !== null) {
    ctx.addIssue({ code: 'custom', path: ['certificate'], message: 'only https VIPs take a certificate' });
  }
  if (v.protocol === 'tcp' && v.hostnames.length > 0) {
    ctx.addIssue({ code: 'custom', path: ['hostnames'], message: 'tcp VIPs cannot match host names' });
  }
  if (v.protocol === 'tcp' && v.persistence === 'cookie') {
    ctx.addIssue({ code: 'custom', path: ['persistence'], message: 'cookie persistence needs http or https' });
  }
  if (new Set(v.hostnames).size !== v.hostnames.length) {
    ctx.addIssue({ code: 'custom', path: ['hostnames'], message: 'host names must be unique' });
  }
}

export const createVipSchema = z
  .strictObject({
    name: slug,
    address: ipAddress.optional(),
    addressPool: slug.optional(),
    ...vipBody,
  })
  .superRefine((v, ctx) => {
    if ((v.address === undefined) === (v.addressPool === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: 'give either address (an explicit IP) or addressPool (lease the next free address), not both',
      });
    }
    checkVipInvariants(v, ctx);
  });
export type CreateVip = z.output<typeof createVipSchema>;

/** A patch names only what changes; the name and address of a VIP are fixed for its life. */
export const patchVipSchema = z.strictObject({
  port: vipBody.port.optional(),
  protocol: vipBody.protocol.optional(),
  hostnames: z.array(hostPattern).max(100).optional(),
  certificate: slug.nullable().optional(),
  persistence: z.enum(PERSISTENCE_TYPES).optional(),
  cookieName: cookieName.optional(),
  timeouts: z
    .strictObject({
      clientMs: millis(1, 3_600_000).optional(),
      serverMs: millis(1, 3_600_000).optional(),
      connectMs: millis(1, 600_000).optional(),
    })
    .optional(),
  allowlist: z.array(sourceRange).max(256).optional(),
  defaultPool: slug.nullable().optional(),
});
export type PatchVip = z.output<typeof patchVipSchema>;
