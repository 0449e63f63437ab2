import {
  entryHash,
  type HeldState,
  type NginxCaps,
  type NginxRuntimeState,
  type NginxUpstream,
  type PushReply,
  type StatePush,
  type Versioned,
} from './nginx-runtime.js';

/** One entry the push changes on the node. */
export interface NginxRuntimeChange {
  readonly entry: 'upstream' | 'caps';
  /** The upstream's name, or the tenant's id for caps. */
  readonly name: string;
  readonly action: 'add' | 'change' | 'remove';
}

export interface NginxRuntimePlan {
  /** The partial push that brings the node to the desired state, or null when it holds it already. */
  readonly push: StatePush | null;
  /** What the push changes, upstreams then caps, each sorted by name. */
  readonly changes: readonly NginxRuntimeChange[];
  /**
   * Entries the node holds at a newer revision than the desired state's (a replica with a newer
   * state pushed them): left alone, the node would refuse them as stale. A later pass, from a
   * newer state, settles them.
   */
  readonly ahead: readonly string[];
  /** Entries to remove once the node runs a configuration without them (see PlanOptions.deferRemovals). */
  readonly deferred: readonly string[];
}

export interface NginxPlanOptions {
  /**
   * The node still runs a configuration older than the desired state: its `upstream` blocks and
   * tenant servers may still use the entries the desired state dropped (a VIP removed with its
   * persistence upstream, a tenant moved off the node), and removing them now would answer 503
   * until the reload. They are left in place; the reload's complete state file removes them, as
   * does the first pass after the node has applied a newer configuration.
   */
  readonly deferRemovals?: boolean;
  /**
   * Entries of tenants whose part is still being validated (NodeSnapshot.unsettled), by upstream
   * name and by tenant: the node may hold their old or their new state, and the plan leaves them be.
   */
  readonly leftAlone?: { readonly upstreams: ReadonlySet<string>; readonly caps: ReadonlySet<string> };
}

/**
 * Pure: what to push so that a node holding `held` holds `desired`. Entries are compared by hash
 * (the node reports hashes, not contents), so an unchanged entry costs nothing whatever its
 * revision; changed and new entries go at the desired revision, entries the desired state no
 * longer has are removed at it (or later: see NginxPlanOptions). Nothing is pushed over an entry
 * the node holds at a newer revision.
 */
export function planNginxRuntime(
  desired: NginxRuntimeState,
  held: HeldState,
  options: NginxPlanOptions = {},
): NginxRuntimePlan {
  const changes: NginxRuntimeChange[] = [];
  const ahead: string[] = [];
  const deferred: string[] = [];
  const revision = desired.revision;
  const diff = <T extends object>(
    entry: NginxRuntimeChange['entry'],
    want: Readonly<Record<string, T>>,
    have: HeldState['upstreams'],
    alone: ReadonlySet<string> | undefined,
  ) => {
    const set: Record<string, Versioned<T>> = {};
    const removed: string[] = [];
    for (const name of Object.keys(want).sort()) {
      const value = want[name]!;
      const hash = hashOf(value);
      const now = have[name];
      if (now !== undefined && now.hash === hash) continue;
      if (now !== undefined && now.revision > revision) {
        ahead.push(`${entry} ${name}`);
        continue;
      }
      set[name] = { revision, hash, value };
      changes.push({ entry, name, action: now === undefined ? 'add' : 'change' });
    }
    for (const name of Object.keys(have).sort()) {
      if (Object.hasOwn(want, name) || alone?.has(name) === true) continue;
      if (have[name]!.revision > revision) {
        ahead.push(`${entry} ${name}`);
        continue;
      }
      if (options.deferRemovals === true) {
        deferred.push(`${entry} ${name}`);
        continue;
      }
      removed.push(name);
      changes.push({ entry, name, action: 'remove' });
    }
    return { set, removed };
  };
  const upstreams = diff<NginxUpstream>('upstream', desired.upstreams, held.upstreams, options.leftAlone?.upstreams);
  const caps = diff<NginxCaps>('caps', desired.caps, held.caps, options.leftAlone?.caps);
  if (changes.length === 0) return { push: null, changes, ahead, deferred };
  const removals = upstreams.removed.length + caps.removed.length > 0;
  return {
    push: {
      complete: false,
      upstreams: upstreams.set,
      caps: caps.set,
      ...(removals && { removed: { upstreams: upstreams.removed, caps: caps.removed, revision } }),
    },
    changes,
    ahead,
    deferred,
  };
}

/** How a push went, entry by entry, as the reconciler counts and records it. */
export interface NginxPushOutcome {
  /** Entries pushed: changes and removals. */
  readonly sent: number;
  /** Entries the node now holds as pushed. */
  readonly ok: number;
  /** Entries the node refused because it holds a newer revision: not a failure, a later pass settles them. */
  readonly stale: readonly string[];
  /** Entries the node could not store (a full dictionary): what it held for them is unchanged, the next pass pushes them again. */
  readonly failed: readonly { readonly key: string; readonly error: string }[];
}

/** Pure: the outcome of `plan`'s push as the node replied to it. */
export function judgePush(plan: NginxRuntimePlan, reply: PushReply): NginxPushOutcome {
  const sent = plan.changes.length;
  return {
    sent,
    ok: Math.max(0, sent - reply.stale.length - reply.failed.length),
    stale: reply.stale,
    failed: reply.failed,
  };
}

/** The failed entries in one line: the first with its error, and how many more. */
export function describePushFailures(failed: NginxPushOutcome['failed']): string | null {
  const first = failed[0];
  if (first === undefined) return null;
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : '';
  return `${first.key}: ${first.error}${more}`.slice(0, 2000);
}

/** A change as the plan shows it: a command-like line and what it does. */
export function describeNginxChange(
  change: NginxRuntimeChange,
  desired: NginxRuntimeState,
): { readonly command: string; readonly description: string } {
  const verb = change.action === 'remove' ? 'remove' : 'set';
  const command = `${verb} ${change.entry} ${change.name}`;
  if (change.action === 'remove')
    return {
      command,
      description:
        change.entry === 'upstream'
          ? 'an upstream the node no longer serves'
          : 'caps of a tenant no longer on the node',
    };
  const what = change.action === 'add' ? 'new' : 'changed';
  if (change.entry === 'caps') {
    const caps = desired.caps[change.name]!;
    return {
      command,
      description: `${what} caps of tenant ${change.name}: ${caps.maxConnections} requests in flight, ${caps.requestsPerSecond} requests/s`,
    };
  }
  const u = desired.upstreams[change.name]!;
  const peers = u.peers.map(
    (p) => `${p.name} ${p.admin === 'ready' ? `weight ${p.weight}` : p.admin}${p.backup ? ' backup' : ''}`,
  );
  return {
    command,
    description:
      `${what} upstream of pool ${u.pool} of tenant ${u.tenant}: ${u.algorithm}${u.healthCheck === null ? '' : `, ${u.healthCheck.type} check`}; ${peers.length === 0 ? 'no peers' : peers.join(', ')}`.slice(
        0,
        500,
      ),
  };
}

/**
 * Entries are immutable and a node's state is rebuilt from the same objects while they do not
 * change: each is hashed once, not on every pass (10,000 upstreams are 10,000 SHA-256 sums).
 */
const hashes = new WeakMap<object, string>();

function hashOf(value: object): string {
  let hash = hashes.get(value);
  if (hash === undefined) {
    hash = entryHash(value);
    hashes.set(value, hash);
  }
  return hash;
}
