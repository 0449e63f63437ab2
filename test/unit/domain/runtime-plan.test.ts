import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memberHealth } from '../../../src/domain/member-health.js';
import { planRuntime, type RuntimePlan } from '../../../src/domain/runtime-plan.js';
import type { DesiredRuntime, ObservedRuntime } from '../../../src/domain/runtime-state.js';
import type { NodeSnapshot, TenantSnapshot } from '../../../src/domain/snapshot.js';
import { commandBuilders } from '../../../src/fleet/runtime-api/commands/command-builders.js';
import type { RuntimeCommand } from '../../../src/fleet/runtime-api/commands/runtime-command.js';
import { toHaproxyRuntime } from '../../../src/render/haproxy-runtime-view.js';
import { assertProperty, scenario } from '../../support/property.js';
import {
  CERT_FILE,
  MAP_FILE,
  applyCommands,
  member,
  seed,
  seedObserved,
  withMembers,
  withServer,
  withTenant,
} from './runtime-fixtures.js';

/**
 * Change planning against what HAProxy 2.6 really reported while running the seed's config
 * (test/fixtures/runtime/seed/): each case changes the desired state (or the observed one) the
 * way a write (or traffic) would, and checks the exact commands, in order.
 */

const OPTIONS = { drainTimeoutMs: 30_000 };
const baseline = toHaproxyRuntime(seed());
const observedSeed = seedObserved(baseline);

function plan(snapshot: NodeSnapshot, observed: ObservedRuntime = observedSeed): RuntimePlan<RuntimeCommand> {
  return planRuntime(toHaproxyRuntime(snapshot), observed, commandBuilders, OPTIONS);
}

const lines = (p: RuntimePlan<RuntimeCommand>): string[] => p.commands.map((c) => c.line);

describe('reading a live HAProxy', () => {
  it('when the proxy runs the seed config, then its backends, caps, servers, map and certificate are read back as rendered', () => {
    expect(observedSeed.frontends).toEqual([
      { name: 'fe_a_web', maxconn: 40000, sessions: 0 },
      { name: 'fe_b_api', maxconn: 80000, sessions: 0 },
      { name: 'fe_c_ssh', maxconn: 20000, sessions: 0 },
    ]);
    expect(observedSeed.backends).toEqual(
      expect.arrayContaining(['be_a_web', 'be_b_api', 'be_c_ssh', 'sy_unrouted_http', 'st_a']),
    );
    expect(
      observedSeed.servers.map((s) => `${s.backend}/${s.name} ${s.address}:${s.port} w${s.weight} ${s.admin}`),
    ).toEqual([
      'be_a_web/web-1 10.0.1.11:8080 w100 ready',
      'be_a_web/web-2 10.0.1.12:8080 w100 ready',
      'be_a_web/web-3 10.0.1.13:8080 w100 ready',
      'be_b_api/api-1 10.0.2.11:8443 w100 ready',
      'be_b_api/api-2 10.0.2.12:8443 w100 ready',
      'be_c_ssh/ssh-1 10.0.3.11:22 w100 ready',
      'be_c_ssh/ssh-2 10.0.3.12:22 w100 ready',
    ]);
    expect(observedSeed.capsMap).toEqual([
      { key: 'a', value: '20000' },
      { key: 'a.conn', value: '40000' },
      { key: 'b', value: '40000' },
      { key: 'b.conn', value: '80000' },
      { key: 'c', value: '10000' },
      { key: 'c.conn', value: '20000' },
    ]);
  });

  it('computes the served certificate’s fingerprint exactly as HAProxy reports it', () => {
    expect(baseline.certificates.map((c) => c.file)).toEqual([CERT_FILE]);
    expect(observedSeed.certificates.get(CERT_FILE)).toBe(baseline.certificates[0]!.fingerprint);
  });

  it('when nothing changed, then nothing is planned', () => {
    expect(plan(seed())).toEqual({ commands: [], pendingReload: [], inProgress: [], notes: [], deferredCaps: [] });
  });
});

describe('member changes go out as runtime commands', () => {
  it('when a weight changes, then only that server is re-weighted', () => {
    const p = plan(
      withMembers(seed(), 'c', 'ssh', (ms) => ms.map((m) => (m.name === 'ssh-1' ? { ...m, weight: 40 } : m))),
    );
    expect(lines(p)).toEqual(['set server be_c_ssh/ssh-1 weight 40']);
    expect(p.pendingReload).toEqual([]);
  });

  it('when a member is drained, then it gets the weight the file gives it (0) and the drain state', () => {
    const p = plan(
      withMembers(seed(), 'a', 'web', (ms) => ms.map((m) => (m.name === 'web-2' ? { ...m, state: 'drain' } : m))),
    );
    expect(lines(p)).toEqual(['set server be_a_web/web-2 weight 0', 'set server be_a_web/web-2 state drain']);
  });

  it('when a member is disabled, then it goes to maintenance; when enabled again, back to ready', () => {
    const disabled = withMembers(seed(), 'b', 'api', (ms) =>
      ms.map((m) => (m.name === 'api-2' ? { ...m, state: 'disabled' } : m)),
    );
    expect(lines(plan(disabled))).toEqual(['set server be_b_api/api-2 state maint']);
    expect(lines(plan(seed(), withServer(observedSeed, 'be_b_api/api-2', { admin: 'maint' })))).toEqual([
      'set server be_b_api/api-2 state ready',
    ]);
  });

  it('when a member moves, then its address and port are set in place', () => {
    const p = plan(
      withMembers(seed(), 'b', 'api', (ms) =>
        ms.map((m) => (m.name === 'api-1' ? { ...m, address: '10.0.2.99', port: 9090 } : m)),
      ),
    );
    expect(lines(p)).toEqual(['set server be_b_api/api-1 addr 10.0.2.99 port 9090']);
  });

  it('compares IPv6 addresses in canonical form, so an equal address written differently plans nothing', () => {
    const desired: DesiredRuntime = {
      ...baseline,
      backends: baseline.backends.map((b) =>
        b.name === 'be_c_ssh' ? { ...b, servers: b.servers.map((s) => ({ ...s, address: '2001:DB8:0:0::1' })) } : b,
      ),
    };
    const observed = {
      ...observedSeed,
      servers: observedSeed.servers.map((s) => (s.backend === 'be_c_ssh' ? { ...s, address: '2001:db8::1' } : s)),
    };
    expect(planRuntime(desired, observed, commandBuilders, OPTIONS).commands).toEqual([]);
  });

  it('when a member is added to a pool of TLS members, then it is added with the TLS and the check the config prints, its checks enabled, then it is enabled', () => {
    const p = plan(
      withMembers(seed(), 'b', 'api', (ms) => [
        ...ms,
        member('api', { name: 'api-3', address: '10.0.2.13', port: 8443, weight: 30 }),
      ]),
    );
    expect(lines(p)).toEqual([
      'add server be_b_api/api-3 10.0.2.13:8443 weight 30 ssl verify required ca-file /etc/haproxy/switchyard/member-tls/b/ca/b-members.pem sni str(api.b.internal) check inter 2000 rise 2 fall 3 check-ssl check-sni api.b.internal',
      'enable health be_b_api/api-3',
      'enable server be_b_api/api-3',
    ]);
  });

  it('when a backup member is added to a TCP pool, then it is added as a backup', () => {
    const p = plan(
      withMembers(seed(), 'c', 'ssh', (ms) => [
        ...ms,
        member('ssh', { name: 'ssh-3', address: '10.0.3.13', port: 22, backup: true }),
      ]),
    );
    expect(lines(p)).toEqual([
      'add server be_c_ssh/ssh-3 10.0.3.13:22 weight 100 backup check inter 5000 rise 2 fall 3',
      'enable health be_c_ssh/ssh-3',
      'enable server be_c_ssh/ssh-3',
    ]);
  });

  it('when a member is added disabled or draining, then it stays in maintenance or is drained after its add', () => {
    const p = plan(
      withMembers(seed(), 'c', 'ssh', (ms) => [
        ...ms,
        member('ssh', { name: 'ssh-3', address: '10.0.3.13', port: 22, state: 'disabled' }),
        member('ssh', { name: 'ssh-4', address: '10.0.3.14', port: 22, state: 'drain' }),
      ]),
    );
    expect(lines(p)).toEqual([
      'add server be_c_ssh/ssh-3 10.0.3.13:22 weight 100 check inter 5000 rise 2 fall 3',
      'enable health be_c_ssh/ssh-3',
      'add server be_c_ssh/ssh-4 10.0.3.14:22 weight 0 check inter 5000 rise 2 fall 3',
      'enable health be_c_ssh/ssh-4',
      'set server be_c_ssh/ssh-4 state drain',
    ]);
  });

  it('when a pool has no health check, then an added member gets no check and no enable health', () => {
    const snapshot = withTenant(seed(), 'c', (t) => ({
      ...t,
      pools: t.pools.map((p) => ({ ...p, healthCheck: null })),
    }));
    const p = plan(
      withMembers(snapshot, 'c', 'ssh', (ms) => [
        ...ms,
        member('ssh', { name: 'ssh-3', address: '10.0.3.13', port: 22 }),
      ]),
    );
    expect(lines(p)).toEqual(['add server be_c_ssh/ssh-3 10.0.3.13:22 weight 100', 'enable server be_c_ssh/ssh-3']);
  });

  it('when a member is added behind cookie persistence, then nothing is sent and the reload is named as what adds it', () => {
    const p = plan(
      withMembers(seed(), 'a', 'web', (ms) => [
        ...ms,
        member('web', { name: 'web-4', address: '10.0.1.14', port: 8080 }),
      ]),
    );
    expect(p.commands).toEqual([]);
    expect(p.pendingReload).toEqual([
      expect.stringMatching(/^be_a_web\/web-4 joins with the next reload \(cookie persistence/),
    ]);
  });

  it('when a member turns into a backup, then no command can do it: it waits for the reload', () => {
    const p = plan(
      withMembers(seed(), 'c', 'ssh', (ms) => ms.map((m) => (m.name === 'ssh-2' ? { ...m, backup: true } : m))),
    );
    expect(p.commands).toEqual([]);
    expect(p.pendingReload).toEqual(['be_c_ssh/ssh-2 becomes a backup server with the next reload']);
    // A pass that did not read backup flags (only previews do) has no opinion about them.
    const unread = { ...observedSeed, servers: observedSeed.servers.map((s) => ({ ...s, backup: null })) };
    expect(
      plan(
        withMembers(seed(), 'c', 'ssh', (ms) => ms.map((m) => (m.name === 'ssh-2' ? { ...m, backup: true } : m))),
        unread,
      ).pendingReload,
    ).toEqual([]);
  });
});

describe('member removal, one safe step per pass', () => {
  const removed = withMembers(seed(), 'c', 'ssh', (ms) => ms.filter((m) => m.name !== 'ssh-2'));

  it('when the removed member has no session, then it goes to maintenance and is deleted in one pass', () => {
    const p = plan(removed);
    expect(lines(p)).toEqual(['set server be_c_ssh/ssh-2 state maint', 'del server be_c_ssh/ssh-2']);
    expect(p.inProgress).toEqual([]);
  });

  it('when the removed member still carries sessions, then it is only drained', () => {
    const p = plan(removed, withServer(observedSeed, 'be_c_ssh/ssh-2', { sessions: 3 }));
    expect(lines(p)).toEqual(['set server be_c_ssh/ssh-2 state drain']);
    expect(p.inProgress).toEqual(['be_c_ssh/ssh-2 is draining (3 sessions) before it is deleted']);
  });

  it('while it drains within the timeout, then nothing is sent and the removal stays in progress', () => {
    const p = plan(
      removed,
      withServer(observedSeed, 'be_c_ssh/ssh-2', { sessions: 1, admin: 'drain', secondsInState: 29 }),
    );
    expect(p.commands).toEqual([]);
    expect(p.inProgress).toEqual(['be_c_ssh/ssh-2 is draining with 1 session; deleted once they end']);
  });

  it('when the drain timeout passed with sessions left, then it goes to maintenance but is not deleted yet', () => {
    const p = plan(
      removed,
      withServer(observedSeed, 'be_c_ssh/ssh-2', { sessions: 2, admin: 'drain', secondsInState: 30 }),
    );
    expect(lines(p)).toEqual(['set server be_c_ssh/ssh-2 state maint']);
    expect(p.inProgress).toHaveLength(1);
  });

  it('when its last session ended, then a drained or maintained member is deleted', () => {
    expect(
      lines(plan(removed, withServer(observedSeed, 'be_c_ssh/ssh-2', { admin: 'drain', secondsInState: 5 }))),
    ).toEqual(['set server be_c_ssh/ssh-2 state maint', 'del server be_c_ssh/ssh-2']);
    expect(lines(plan(removed, withServer(observedSeed, 'be_c_ssh/ssh-2', { admin: 'maint' })))).toEqual([
      'del server be_c_ssh/ssh-2',
    ]);
    expect(plan(removed, withServer(observedSeed, 'be_c_ssh/ssh-2', { admin: 'maint', sessions: 1 })).commands).toEqual(
      [],
    );
  });

  it('when its sessions were not read, then it counts as attached: drained, never deleted on a guess', () => {
    const p = plan(removed, withServer(observedSeed, 'be_c_ssh/ssh-2', { sessions: null }));
    expect(lines(p)).toEqual(['set server be_c_ssh/ssh-2 state drain']);
    expect(p.inProgress).toEqual(['be_c_ssh/ssh-2 is draining (sessions not read) before it is deleted']);
    expect(
      plan(removed, withServer(observedSeed, 'be_c_ssh/ssh-2', { sessions: null, admin: 'maint' })).commands,
    ).toEqual([]);
  });

  it('when a member leaves a cookie-persistent pool, then it is drained now and removed by the reload', () => {
    const p = plan(withMembers(seed(), 'a', 'web', (ms) => ms.filter((m) => m.name !== 'web-3')));
    expect(lines(p)).toEqual(['set server be_a_web/web-3 state drain']);
    expect(p.pendingReload).toEqual([expect.stringMatching(/^be_a_web\/web-3 leaves with the next reload/)]);
  });
});

describe('allocation and certificates', () => {
  it('when a tenant’s connection cap changes, then its map entry is set: no frontend is touched, full or not', () => {
    const p = plan(withTenant(seed(), 'a', (t) => ({ ...t, allocation: { ...t.allocation, maxConnections: 1234 } })));
    expect(lines(p)).toEqual([`set map ${MAP_FILE} a.conn 1234`]);
    const full = {
      ...observedSeed,
      frontends: observedSeed.frontends.map((f) => (f.name === 'fe_a_web' ? { ...f, sessions: f.maxconn } : f)),
    };
    const raised = plan(
      withTenant(seed(), 'a', (t) => ({
        ...t,
        allocation: { ...t.allocation, maxConnections: 39_000, connectionLimit: 40_000 },
      })),
      full,
    );
    expect(lines(raised)).toEqual([`set map ${MAP_FILE} a.conn 39000`]);
    expect(raised.deferredCaps).toEqual([]);
  });

  it('when a connection limit goes up and another comes down, then the lower ceiling goes first and a frontend with room is raised in place', () => {
    const p = plan(
      withTenant(
        withTenant(seed(), 'a', (t) => ({ ...t, allocation: { ...t.allocation, connectionLimit: 50_000 } })),
        'b',
        (t) => ({ ...t, allocation: { ...t.allocation, maxConnections: 70_000, connectionLimit: 70_000 } }),
      ),
    );
    expect(lines(p)).toEqual([
      'set maxconn frontend fe_b_api 70000',
      'set maxconn frontend fe_a_web 50000',
      `set map ${MAP_FILE} b.conn 70000`,
    ]);
    expect(applyCommands(observedSeed, p.commands).frontends.map((f) => f.maxconn)).toEqual([50_000, 70_000, 20_000]);
  });

  it('when a full frontend (or one within 5% of its cap, or whose sessions were not read) would be raised, then the raise goes out with a reload: HAProxy 2.6.12 aborts on a runtime one', () => {
    const raised = withTenant(seed(), 'a', (t) => ({ ...t, allocation: { ...t.allocation, connectionLimit: 50_000 } }));
    const observedWith = (sessions: number | null) => ({
      ...observedSeed,
      frontends: observedSeed.frontends.map((f) => (f.name === 'fe_a_web' ? { ...f, sessions } : f)),
    });
    for (const sessions of [40_000, 38_001, null]) {
      const p = plan(raised, observedWith(sessions));
      expect(p.commands).toEqual([]);
      expect(p.pendingReload).toEqual([
        expect.stringMatching(
          /^frontend fe_a_web is at its cap \(.+ of 40000 sessions\): its raise to 50000 goes out with a reload/,
        ),
      ]);
      expect(p.deferredCaps).toEqual([{ frontend: 'fe_a_web', maxconn: 50_000 }]);
    }
    const roomy = plan(raised, observedWith(37_999));
    expect(lines(roomy)).toEqual(['set maxconn frontend fe_a_web 50000']);
    expect(roomy.deferredCaps).toEqual([]);
  });

  it('when one tenant’s caps come down and another’s go up, then the lowering is set first', () => {
    const capped = (cap: Partial<TenantSnapshot['allocation']>) => (t: TenantSnapshot) => ({
      ...t,
      allocation: { ...t.allocation, ...cap },
    });
    const moved = withTenant(
      withTenant(seed(), 'a', capped({ maxConnections: 39_000, requestsPerSecond: 25_000 })),
      'b',
      capped({ maxConnections: 60_000, requestsPerSecond: 30_000 }),
    );
    expect(lines(plan(moved))).toEqual([
      `set map ${MAP_FILE} a.conn 39000`,
      `set map ${MAP_FILE} b 30000`,
      `set map ${MAP_FILE} b.conn 60000`,
      `set map ${MAP_FILE} a 25000`,
    ]);
  });

  it('when a tenant’s request rate changes, then its map entry is set (requests per second, as the file holds it)', () => {
    const p = plan(withTenant(seed(), 'b', (t) => ({ ...t, allocation: { ...t.allocation, requestsPerSecond: 55 } })));
    expect(lines(p)).toEqual([`set map ${MAP_FILE} b 55`]);
  });

  it('when the live map lacks a tenant, then it is added; when it holds one no longer served, then it is deleted', () => {
    const observed = {
      ...observedSeed,
      capsMap: observedSeed.capsMap!.filter((e) => !e.key.startsWith('b')).concat({ key: 'gone', value: '5' }),
    };
    expect(lines(plan(seed(), observed))).toEqual([
      `add map ${MAP_FILE} b 40000`,
      `add map ${MAP_FILE} b.conn 80000`,
      `del map ${MAP_FILE} gone`,
    ]);
  });

  it('when the caps map is not loaded, then nothing is sent for it and the reload is named', () => {
    const p = plan(seed(), { ...observedSeed, capsMap: null });
    expect(p.commands).toEqual([]);
    expect(p.pendingReload).toEqual([`map ${MAP_FILE} is not loaded yet; it is read with the next reload`]);
  });

  it('when a certificate is rotated, then the new chain and key are staged and committed', () => {
    const rotated = (ext: string) =>
      readFileSync(new URL(`../../fixtures/certs/bundle/b.example.com.rotated.${ext}`, import.meta.url), 'utf8');
    const cert = { certificate: rotated('crt'), privateKey: rotated('key') };
    const p = plan(
      withTenant(seed(), 'b', (t) => ({
        ...t,
        certificates: t.certificates.map((c) => ({ ...c, chainPem: cert.certificate, keyPem: cert.privateKey })),
      })),
    );
    expect(lines(p)).toEqual([`set ssl cert ${CERT_FILE} <<`, `commit ssl cert ${CERT_FILE}`]);
    expect(p.commands[0]!.payload).toBe(`${cert.certificate.trimEnd()}\n${cert.privateKey.trimEnd()}`);
  });
});

describe('structural differences wait for a reload', () => {
  it('when a VIP and a pool are new, then they are named as pending the reload and no server is added to a backend that does not run', () => {
    const snapshot = withTenant(seed(), 'c', (t) => ({
      ...t,
      vips: [...t.vips, { ...t.vips[0]!, name: 'sftp', port: 2222, defaultPool: 'sftp' }],
      pools: [
        ...t.pools,
        { ...t.pools[0]!, name: 'sftp', members: [member('sftp', { name: 's1', address: '10.0.4.1', port: 22 })] },
      ],
    }));
    const p = plan(snapshot);
    expect(p.commands).toEqual([]);
    expect(p.pendingReload).toEqual([
      'frontend fe_c_sftp is not running yet (a new VIP starts with the next reload)',
      'backend be_c_sftp is not running yet (a new pool or mode starts with the next reload)',
    ]);
  });

  it('when a tenant is gone, then its frontend and backend are named as leaving with the reload, and its map entry is deleted', () => {
    const p = plan({ ...seed(), tenants: seed().tenants.filter((t) => t.id !== 'c') });
    expect(lines(p)).toEqual([`del map ${MAP_FILE} c`, `del map ${MAP_FILE} c.conn`]);
    expect(p.pendingReload).toEqual([
      'frontend fe_c_ssh is removed with the next reload',
      'backend be_c_ssh (2 servers) is removed with the next reload',
    ]);
  });

  it('when a tenant is being validated (its part may or may not be the one running), then nothing of it is changed, removed or named as leaving, and its members keep their health', () => {
    // What the node may run: the seed's c, or c's new part (a renamed pool, one member fewer, a new weight).
    const before = seed().tenants.find((t) => t.id === 'c')!;
    const after: TenantSnapshot = {
      ...before,
      vips: before.vips.map((v) => ({ ...v, defaultPool: 'shell' })),
      pools: before.pools.map((p) => ({ ...p, name: 'shell', members: [{ ...p.members[0]!, weight: 5 }] })),
    };
    const others = seed().tenants.filter((t) => t.id !== 'c');
    const snapshot: NodeSnapshot = { ...seed(), tenants: others, unsettled: [after, before] };
    const p = plan(snapshot);
    expect(p).toEqual({ commands: [], pendingReload: [], inProgress: [], notes: [], deferredCaps: [] });
    const health = memberHealth(toHaproxyRuntime(snapshot), observedSeed).filter((h) => h.tenant === 'c');
    expect(health.map((h) => `${h.pool}/${h.member} ${h.backend} ${h.status}`)).toEqual([
      'ssh/ssh-1 be_c_ssh UP',
      'ssh/ssh-2 be_c_ssh UP',
    ]);
    // The others' changes still go out in the same pass.
    const weighted = withMembers(snapshot, 'a', 'web', (ms) => ms.map((m) => ({ ...m, weight: 7 })));
    expect(lines(plan(weighted))).toEqual([
      'set server be_a_web/web-1 weight 7',
      'set server be_a_web/web-2 weight 7',
      'set server be_a_web/web-3 weight 7',
    ]);
  });

  it('when only a health check changes, then nothing is planned at runtime', () => {
    const snapshot = withTenant(seed(), 'c', (t) => ({
      ...t,
      pools: t.pools.map((p) => ({ ...p, healthCheck: { ...p.healthCheck!, intervalMs: 9000 } })),
    }));
    expect(plan(snapshot).commands).toEqual([]);
  });
});

describe('robustness', () => {
  it('when a builder refuses one argument, then that change is dropped with a note and the others still go out', () => {
    const desired: DesiredRuntime = {
      ...baseline,
      backends: baseline.backends.map((b) =>
        b.name !== 'be_c_ssh'
          ? b
          : {
              ...b,
              servers: b.servers.map((s) =>
                s.name === 'ssh-1' ? { ...s, address: 'not-an-ip' } : { ...s, weight: 7 },
              ),
            },
      ),
    };
    const p = planRuntime(desired, observedSeed, commandBuilders, OPTIONS);
    expect(lines(p)).toEqual(['set server be_c_ssh/ssh-2 weight 7']);
    expect(p.notes).toEqual([expect.stringMatching(/^cannot move be_c_ssh\/ssh-1: unsafe runtime API argument ip/)]);
  });

  it('is deterministic: the same state in another order plans the same commands', () => {
    const changed = withMembers(seed(), 'c', 'ssh', (ms) => [
      ...ms.map((m) => ({ ...m, weight: 3 })),
      member('ssh', { name: 'ssh-0', address: '10.0.3.10', port: 22 }),
    ]);
    const shuffled: NodeSnapshot = {
      ...changed,
      tenants: [...changed.tenants]
        .reverse()
        .map((t) => ({ ...t, pools: t.pools.map((p) => ({ ...p, members: [...p.members].reverse() })) })),
    };
    const reversedObserved = {
      ...observedSeed,
      servers: [...observedSeed.servers].reverse(),
      frontends: [...observedSeed.frontends].reverse(),
    };
    expect(lines(plan(shuffled, reversedObserved))).toEqual(lines(plan(changed)));
  });

  it('is idempotent: planned again from the state its commands produce, it plans nothing', () => {
    assertProperty(
      fc.property(
        scenario((rng) => {
          let snapshot = seed();
          for (const [tenant, pool] of [
            ['b', 'api'],
            ['c', 'ssh'],
            ['a', 'web'],
          ] as const) {
            snapshot = withMembers(snapshot, tenant, pool, (ms) => {
              const kept = ms
                .filter(() => tenant === 'a' || !rng.chance(0.3))
                .map((m) => ({
                  ...m,
                  weight: rng.chance(0.5) ? rng.int(0, 256) : m.weight,
                  state: rng.pick(['enabled', 'enabled', 'drain', 'disabled'] as const),
                  port: rng.chance(0.2) ? rng.int(1, 65535) : m.port,
                }));
              const added =
                tenant === 'a'
                  ? []
                  : Array.from({ length: rng.int(0, 2) }, (_, i) =>
                      member(pool, {
                        name: `new-${i}`,
                        address: `10.9.${rng.int(0, 255)}.${i + 1}`,
                        port: 80,
                        weight: rng.int(0, 256),
                        backup: rng.chance(0.2),
                      }),
                    );
              return [...kept, ...added];
            });
            snapshot = withTenant(snapshot, tenant, (t) => ({
              ...t,
              allocation: { maxConnections: rng.int(0, 50_000), requestsPerSecond: rng.int(0, 9_000) },
            }));
          }
          return snapshot;
        }),
        (snapshot) => {
          const desired = toHaproxyRuntime(snapshot);
          const first = planRuntime(desired, observedSeed, commandBuilders, OPTIONS);
          const after = applyCommands(observedSeed, first.commands);
          const again = planRuntime(desired, after, commandBuilders, OPTIONS);
          expect(lines(again)).toEqual([]);
        },
      ),
      200,
    );
  });
});

describe('member health', () => {
  it('maps each server back to its tenant, pool and member, with the check verdict HAProxy reports', () => {
    const health = memberHealth(baseline, observedSeed);
    expect(health.map((h) => `${h.tenant}/${h.pool}/${h.member} ${h.backend} ${h.status} ${h.checkStatus}`)).toEqual([
      'a/web/web-1 be_a_web DOWN L7STS',
      'a/web/web-2 be_a_web DOWN L7STS',
      'a/web/web-3 be_a_web DOWN L7STS',
      'b/api/api-1 be_b_api DOWN L7STS',
      'b/api/api-2 be_b_api DOWN L7STS',
      'c/ssh/ssh-1 be_c_ssh UP INI',
      'c/ssh/ssh-2 be_c_ssh UP INI',
    ]);
  });

  it('reports the administrative state over the checks: a drained or maintained member is DRAIN or MAINT', () => {
    const observed = withServer(withServer(observedSeed, 'be_c_ssh/ssh-1', { admin: 'drain' }), 'be_a_web/web-1', {
      admin: 'maint',
    });
    const health = memberHealth(baseline, observed);
    expect(health.find((h) => h.member === 'ssh-1')!.status).toBe('DRAIN');
    expect(health.find((h) => h.member === 'web-1')!.status).toBe('MAINT');
  });
});
