import type { Resources } from './tenant.js';

/**
 * Which reservations need an admin's approval when a registrar (a CI pipeline) asks for them.
 * `autoApproveUpTo` null: every registration waits for an admin.
 */
export interface ApprovalPolicy {
  readonly autoApproveUpTo: Resources | null;
}

export const NO_AUTO_APPROVAL: ApprovalPolicy = { autoApproveUpTo: null };

/** Whether the policy approves this reservation on its own. */
export function autoApproves(policy: ApprovalPolicy, reservation: Resources): boolean {
  const cap = policy.autoApproveUpTo;
  return cap !== null && reservation.vcpu <= cap.vcpu && reservation.memoryMb <= cap.memoryMb;
}

/** A reservation (and limit) someone asked for that waits for an admin's decision. */
export interface PendingCapacity {
  readonly reservation: Resources;
  readonly limit: Resources;
  readonly requestedBy: string;
  readonly requestedAt: string;
}

export interface Approval {
  /** A capacity change waiting for approval, if any (the tenant keeps its current capacity until then). */
  readonly pending: PendingCapacity | null;
  /** The last decision: who, when and why (auto-approvals say so). */
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
  readonly reason: string | null;
}

/**
 * What happens to a registrar's capacity change on an active tenant: within the policy (or not an
 * increase) it applies at once; a raise above the policy waits for an admin.
 */
export function capacityChangeNeedsApproval(policy: ApprovalPolicy, current: Resources, requested: Resources): boolean {
  const raises = requested.vcpu > current.vcpu || requested.memoryMb > current.memoryMb;
  return raises && !autoApproves(policy, requested);
}
