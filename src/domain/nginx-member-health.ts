import type { MemberHealth, MemberHealthStatus } from './member-health.js';
import type { NginxHealthCheck, NginxRuntimeState, NginxStats } from './nginx-runtime.js';

/**
 * Each desired peer's health as an NGINX node's runtime channel reports it (`stats().peers`), in
 * the shape HAProxy's check results are stored in, so the API, the dashboard and placement read
 * both kinds alike. Peers map back to tenant, pool and member through the desired upstreams; a
 * peer the node does not report yet is left out, as HAProxy's servers are. The administrative
 * state wins: a peer in maintenance or draining is reported so whatever its checks say.
 * Sorted by upstream (the backend column), then peer.
 */
export function nginxMemberHealth(desired: NginxRuntimeState, stats: NginxStats): MemberHealth[] {
  const out: MemberHealth[] = [];
  for (const name of Object.keys(desired.upstreams).sort()) {
    const upstream = desired.upstreams[name]!;
    for (const peer of upstream.peers) {
      const seen = stats.peers[`${name}/${peer.name}`];
      if (seen === undefined) continue;
      const status: MemberHealthStatus =
        peer.admin === 'maint' ? 'MAINT' : peer.admin === 'drain' ? 'DRAIN' : seen.health === 'down' ? 'DOWN' : 'UP';
      const verdict = upstream.healthCheck === null ? null : checkVerdict(upstream.healthCheck, seen.lastCheck);
      out.push({
        tenant: upstream.tenant,
        pool: upstream.pool,
        member: peer.name,
        backend: name,
        status,
        checkStatus: verdict,
        checkDescription: upstream.healthCheck === null ? null : seen.lastCheck,
      });
    }
  }
  return out.sort((a, b) =>
    a.backend < b.backend ? -1 : a.backend > b.backend ? 1 : a.member < b.member ? -1 : a.member > b.member ? 1 : 0,
  );
}

/**
 * The last check in HAProxy's verdict codes (what `checkStatus` holds for HAProxy nodes), from
 * the words the node reports (`HTTP 503`, `timeout`, `connection refused`, `connected`): INI
 * before the first check, L7OK/L7STS by the expected statuses, L4OK for a TCP connect, L7TOUT or
 * L4TOUT for a timeout, L6RSP for a failed TLS handshake, L4CON for any other connection problem.
 */
export function checkVerdict(check: NginxHealthCheck, lastCheck: string | null): string {
  if (lastCheck === null) return 'INI';
  const http = /^HTTP (\d{3})\b/.exec(lastCheck);
  if (http !== null) {
    const status = Number(http[1]);
    return check.expectedStatus.some(([low, high]) => status >= low && status <= high) ? 'L7OK' : 'L7STS';
  }
  if (/timeout|timed out/i.test(lastCheck)) return check.type === 'tcp' ? 'L4TOUT' : 'L7TOUT';
  if (/handshake|ssl|tls/i.test(lastCheck)) return 'L6RSP';
  if (check.type === 'tcp' && /^(connected|ok|up)\b/i.test(lastCheck)) return 'L4OK';
  return 'L4CON';
}
