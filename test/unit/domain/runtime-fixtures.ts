import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createMemberSchema, type Member, type MemberSpec } from '../../../src/domain/member.js';
import type {
  DesiredRuntime,
  ObservedRuntime,
  ObservedServer,
  ServerAdmin,
} from '../../../src/domain/runtime-state.js';
import type { NodeSnapshot, PoolSnapshot, TenantSnapshot } from '../../../src/domain/snapshot.js';
import { observeCommands, readObservation } from '../../../src/fleet/observe-runtime.js';
import type { RuntimeCommand } from '../../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult } from '../../../src/fleet/runtime-api/runtime-executor.js';
import { seedSnapshot } from '../../fixtures/seed-snapshot.js';

/** The configDir the seed captures were rewritten to (test/fixtures/runtime/README.md). */
export const SEED_DIR = '/etc/haproxy/switchyard';
export const MAP_FILE = `${SEED_DIR}/maps/tenant-caps.map`;
export const CERT_FILE = `${SEED_DIR}/certs/b/b-example.pem`;

/**
 * The seed node as the captures saw it: its Runtime API on the local socket only (no node
 * certificate to observe; the mTLS listener's certificate is covered by runtime-mtls.test.ts).
 */
export const seed = (): NodeSnapshot => {
  const snapshot = seedSnapshot('haproxy', SEED_DIR);
  return { ...snapshot, node: { ...snapshot.node, runtimeTls: null, masterAddress: null } };
};

/** A reply as the client hands it over: the prompt and trailing newlines already stripped. */
export function capture(name: string): string {
  return readFileSync(new URL(`../../fixtures/runtime/seed/${name}`, import.meta.url), 'utf8').replace(/\n+$/, '');
}

/** What HAProxy running the seed config answered to the observation batch, read as the reconciler reads it. */
export function seedObserved(desired: DesiredRuntime): ObservedRuntime {
  const replies = [
    capture('show-servers-state.txt'),
    capture('show-stat.csv'),
    capture('show-map.txt'),
    capture('show-ssl-cert.txt'),
  ];
  const results = observeCommands(desired).map(
    (command, i): CommandResult => ({ status: 'ok', command, output: replies[i] ?? '' }),
  );
  const observation = readObservation(desired, results);
  if (!observation.ok) throw new Error(observation.error);
  return observation.observed;
}

const STAMP = { revision: 1, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };

export function member(pool: string, input: Record<string, unknown>): Member {
  return { ...createMemberSchema.parse(input), pool, ...STAMP };
}

/** The snapshot with one tenant changed. */
export function withTenant(
  snapshot: NodeSnapshot,
  id: string,
  change: (t: TenantSnapshot) => TenantSnapshot,
): NodeSnapshot {
  return { ...snapshot, tenants: snapshot.tenants.map((t) => (t.id === id ? change(t) : t)) };
}

/** The snapshot with one pool's members changed. */
export function withMembers(
  snapshot: NodeSnapshot,
  tenant: string,
  pool: string,
  change: (ms: readonly MemberSpec[]) => MemberSpec[],
): NodeSnapshot {
  return withTenant(snapshot, tenant, (t) => ({
    ...t,
    pools: t.pools.map((p): PoolSnapshot => (p.name === pool ? { ...p, members: change(p.members) } : p)),
  }));
}

/** An observation with one server changed (sessions, admin state, ...). */
export function withServer(observed: ObservedRuntime, id: string, change: Partial<ObservedServer>): ObservedRuntime {
  return {
    ...observed,
    servers: observed.servers.map((s) => (`${s.backend}/${s.name}` === id ? { ...s, ...change } : s)),
  };
}

/**
 * What a HAProxy 2.6 worker does with the planner's commands, on an observation: enough to prove
 * that planning again from the state the commands produce plans nothing. It refuses what HAProxy
 * refuses (`del server` outside maintenance or with sessions, duplicate names, `set map` on a missing key).
 */
export function applyCommands(observed: ObservedRuntime, commands: readonly RuntimeCommand[]): ObservedRuntime {
  const servers: ObservedServer[] = observed.servers.map((s) => ({ ...s }));
  const frontends = observed.frontends.map((f) => ({ ...f }));
  let map = observed.capsMap?.map((e) => ({ ...e })) ?? null;
  const certificates = new Map(observed.certificates);
  const staged = new Map<string, string>();
  const find = (id: string): ObservedServer & { admin: ServerAdmin } => {
    const s = servers.find((x) => `${x.backend}/${x.name}` === id);
    if (s === undefined) throw new Error(`No such server: ${id}`);
    return s as ObservedServer & { admin: ServerAdmin };
  };
  for (const { line, payload } of commands) {
    let m: RegExpExecArray | null;
    if ((m = /^set server (\S+) weight (\d+)$/.exec(line))) Object.assign(find(m[1]!), { weight: Number(m[2]) });
    else if ((m = /^set server (\S+) addr (\S+) port (\d+)$/.exec(line)))
      Object.assign(find(m[1]!), { address: m[2], port: Number(m[3]) });
    else if ((m = /^set server (\S+) state (ready|drain|maint)$/.exec(line)))
      Object.assign(find(m[1]!), { admin: m[2] });
    else if ((m = /^enable server (\S+)$/.exec(line))) Object.assign(find(m[1]!), { admin: 'ready' });
    else if ((m = /^enable health (\S+)$/.exec(line))) find(m[1]!);
    else if ((m = /^add server ([^/\s]+)\/(\S+) (\S+):(\d+)(.*)$/.exec(line))) {
      if (servers.some((s) => s.backend === m![1] && s.name === m![2]))
        throw new Error('Already exists a server with the same name in backend.');
      const weight = /weight (\d+)/.exec(m[5]!);
      servers.push({
        backend: m[1]!,
        name: m[2]!,
        address: m[3]!,
        port: Number(m[4]),
        weight: weight ? Number(weight[1]) : 1,
        admin: 'maint',
        backup: / backup/.test(m[5]!),
        running: false,
        sessions: 0,
        secondsInState: 0,
        checkStatus: null,
        checkDescription: null,
      });
    } else if ((m = /^del server (\S+)$/.exec(line))) {
      const s = find(m[1]!);
      if (s.admin !== 'maint') throw new Error('Only servers in maintenance mode can be deleted.');
      if (s.sessions !== 0) throw new Error('Server still has connections attached to it, cannot remove it.');
      servers.splice(servers.indexOf(s), 1);
    } else if ((m = /^set maxconn frontend (\S+) (\d+)$/.exec(line)))
      Object.assign(frontends.find((f) => f.name === m![1])!, { maxconn: Number(m[2]) });
    else if ((m = /^set map (\S+) (\S+) (\S+)$/.exec(line))) {
      if (!map?.some((e) => e.key === m![2])) throw new Error('entry not found.');
      map = map.map((e) => (e.key === m![2] ? { ...e, value: m![3]! } : e));
    } else if ((m = /^add map (\S+) (\S+) (\S+)$/.exec(line))) map = [...(map ?? []), { key: m[2]!, value: m[3]! }];
    else if ((m = /^del map (\S+) (\S+)$/.exec(line))) map = (map ?? []).filter((e) => e.key !== m![2]);
    else if ((m = /^set ssl cert (\S+) <<$/.exec(line))) staged.set(m[1]!, payload!);
    else if ((m = /^commit ssl cert (\S+)$/.exec(line))) {
      certificates.set(m[1]!, new X509Certificate(staged.get(m[1]!)!).fingerprint.replace(/:/g, ''));
      staged.delete(m[1]!);
    } else throw new Error(`the fake worker does not know: ${line}`);
  }
  return { ...observed, servers, frontends, capsMap: map, certificates };
}
