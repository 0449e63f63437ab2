import type { Resources } from '../tenant.js';

/** A reservation or a node's room, with vCPU in milli-vCPU so that sums are exact integers. */
export interface Need {
  readonly milli: number;
  readonly mb: number;
}

export const ZERO_NEED: Need = { milli: 0, mb: 0 };

const toMilli = (vcpu: number): number => Math.round(vcpu * 1000);
export const toNeed = (r: Resources): Need => ({ milli: toMilli(r.vcpu), mb: r.memoryMb });

export function fromNeed(milli: number, mb: number): Resources {
  return { vcpu: milli / 1000, memoryMb: mb };
}

/** The larger of the two shares of `cap` that `need` takes. */
export function relativeSize(need: Need, cap: Need): number {
  return Math.max(ratio(need.milli, cap.milli), ratio(need.mb, cap.mb));
}

export function ratio(x: number, cap: number): number {
  if (cap > 0) return x / cap;
  return x > 0 ? Number.POSITIVE_INFINITY : 0;
}

export function formatNeed(n: Need): string {
  return `${formatVcpu(n.milli)} vCPU / ${n.mb} MB`;
}

/** Only the dimensions that fall short: "1 vCPU", "2048 MB" or "1 vCPU / 2048 MB". */
export function formatShort(n: Need): string {
  if (n.mb === 0) return `${formatVcpu(n.milli)} vCPU`;
  if (n.milli === 0) return `${n.mb} MB`;
  return formatNeed(n);
}

function formatVcpu(milli: number): string {
  return String(milli / 1000);
}
