import type { DesiredRuntime, ObservedRuntime } from './runtime-state.js';

export const MEMBER_HEALTH_STATUSES = ['UP', 'DOWN', 'MAINT', 'DRAIN'] as const;
export type MemberHealthStatus = (typeof MEMBER_HEALTH_STATUSES)[number];

/** One member as one node's proxy sees it, through one backend (a pool can have an HTTP and a TCP backend). */
export interface MemberHealth {
  readonly tenant: string;
  readonly pool: string;
  readonly member: string;
  readonly backend: string;
  readonly status: MemberHealthStatus;
  /** HAProxy's check verdict (L7OK, L4CON, L7STS, ...), or null when the pool has no check. */
  readonly checkStatus: string | null;
  readonly checkDescription: string | null;
}

/**
 * Each desired member's health as the proxy reports it, mapped back to tenant, pool and member
 * through the desired backends (the renderer's names). The administrative state wins: a member
 * in maintenance or draining is reported so whatever its checks say. Sorted by backend, member.
 */
export function memberHealth(desired: DesiredRuntime, observed: ObservedRuntime): MemberHealth[] {
  const live = new Map(observed.servers.map((s) => [`${s.backend}/${s.name}`, s]));
  const out: MemberHealth[] = [];
  // Tenants left alone while their part is validated keep their members' health, under the names the node may hold.
  for (const be of [...desired.backends, ...(desired.leftAlone?.backends ?? [])]) {
    for (const srv of be.servers) {
      const seen = live.get(`${be.name}/${srv.name}`);
      if (seen === undefined) continue;
      const status: MemberHealthStatus =
        seen.admin === 'maint' ? 'MAINT' : seen.admin === 'drain' ? 'DRAIN' : seen.running ? 'UP' : 'DOWN';
      out.push({
        tenant: be.tenant,
        pool: be.pool,
        member: srv.name,
        backend: be.name,
        status,
        checkStatus: seen.checkStatus,
        checkDescription: seen.checkDescription,
      });
    }
  }
  return out.sort((a, b) =>
    a.backend < b.backend ? -1 : a.backend > b.backend ? 1 : a.member < b.member ? -1 : a.member > b.member ? 1 : 0,
  );
}
