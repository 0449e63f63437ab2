import * as arg from './argument-guards.js';
import { runtimeCommand, UnsafeArgumentError, type RuntimeCommand } from './runtime-command.js';

/** Reads of HAProxy's counters: per proxy and server (`show stat`) and for the whole process (`show info`). */

export type StatObjectType = 'frontend' | 'backend' | 'server';
const STAT_TYPE_BITS: Record<StatObjectType, number> = { frontend: 1, backend: 2, server: 4 };

export interface StatScope {
  /** A proxy name or its numeric id (iid). */
  readonly proxy: string | number;
  /** Which rows of that proxy; all by default. */
  readonly types?: readonly StatObjectType[];
  /** One server by its numeric id (sid); all by default. */
  readonly serverId?: number;
}

/** `show stat [<iid|proxy> <type> <sid>]`: CSV of every proxy, or of one proxy when scoped. */
export function showStat(scope?: StatScope): RuntimeCommand {
  if (scope === undefined) return runtimeCommand('show-stat', 'show stat', 'read all statistics');
  const proxy =
    typeof scope.proxy === 'number'
      ? String(arg.int('proxy', scope.proxy, 1, arg.MAX_INT))
      : arg.name('proxy', scope.proxy);
  const types = scope.types ?? [];
  const mask =
    types.length === 0
      ? -1
      : types.reduce((bits, t) => bits | STAT_TYPE_BITS[arg.oneOf('type', t, ['frontend', 'backend', 'server'])], 0);
  const sid = scope.serverId === undefined ? -1 : arg.int('serverId', scope.serverId, 1, arg.MAX_INT);
  return runtimeCommand('show-stat', `show stat ${proxy} ${mask} ${sid}`, `read statistics of ${proxy}`);
}

/**
 * `show stat -1 <types> -1`: the rows of the given types of every proxy, in one reply. Leaving out
 * listener rows (one per bind line) is what is cheap to leave out without naming each proxy.
 */
export function showStatOfTypes(types: readonly StatObjectType[]): RuntimeCommand {
  if (types.length === 0)
    throw new UnsafeArgumentError('types', types, 'name at least one of frontend, backend, server');
  const mask = types.reduce(
    (bits, t) => bits | STAT_TYPE_BITS[arg.oneOf('type', t, ['frontend', 'backend', 'server'])],
    0,
  );
  return runtimeCommand('show-stat', `show stat -1 ${mask} -1`, `read ${types.join(', ')} statistics of every proxy`);
}

export function showInfo(): RuntimeCommand {
  return runtimeCommand('show-info', 'show info', 'read process information');
}
