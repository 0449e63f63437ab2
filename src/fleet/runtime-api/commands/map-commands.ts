import * as arg from './argument-guards.js';
import { runtimeCommand, UnsafeArgumentError, type RuntimeCommand } from './runtime-command.js';

/** Commands on the maps a configuration loads (`map(<file>)`), including atomic replacement by version. */

const versioned = (version: number | undefined): string =>
  version === undefined ? '' : `@${arg.int('version', version, 0, arg.MAX_INT)} `;

/** `show map <file>` (or a prepared version `@<v>`); without a file, the list of maps. */
export function showMap(map?: string, version?: number): RuntimeCommand {
  if (map === undefined) return runtimeCommand('show-map', 'show map', 'list the maps');
  const ref = arg.mapRef('map', map);
  return runtimeCommand('show-map', `show map ${versioned(version)}${ref}`, `read map ${ref}`);
}

/** `add map`: appends, even when the key exists (HAProxy keeps duplicates); use setMap to change. */
export function addMap(map: string, key: string, value: string, version?: number): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return runtimeCommand(
    'add-map',
    `add map ${versioned(version)}${ref} ${arg.token('key', key)} ${arg.token('value', value)}`,
    `add ${key} to map ${ref}`,
  );
}

/** Many entries in one `add map <file> <<` command; the caller keeps each batch under MAX_PAYLOAD_BYTES. */
export function addMapEntries(
  map: string,
  entries: readonly (readonly [string, string])[],
  version?: number,
): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  if (entries.length === 0) throw new UnsafeArgumentError('entries', '[]', 'at least one entry');
  const payload = entries
    .map(([k, v], i) => `${arg.token(`entries.${i}.key`, k)} ${arg.token(`entries.${i}.value`, v)}`)
    .join('\n');
  return runtimeCommand(
    'add-map',
    `add map ${versioned(version)}${ref} <<`,
    `add ${entries.length} entries to map ${ref}`,
    payload,
  );
}

/**
 * `get map <file> <key>`: the entry a lookup of `key` finds (the first, where `add map` left
 * duplicates), or `found=no`. What a pass reads of the map for the few tenants it looks at, instead
 * of the whole map (10,000 entries on a large node).
 */
export function getMap(map: string, key: string): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return runtimeCommand('get-map', `get map ${ref} ${arg.token('key', key)}`, `look up ${key} in map ${ref}`);
}

/** `set map`: changes every entry with that key; fails ("entry not found.") when there is none. */
export function setMap(map: string, key: string, value: string): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return runtimeCommand(
    'set-map',
    `set map ${ref} ${arg.token('key', key)} ${arg.token('value', value)}`,
    `set ${key} in map ${ref}`,
  );
}

/** `del map`: removes every entry with that key; fails ("Key not found.") when there is none. */
export function delMap(map: string, key: string): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return runtimeCommand('del-map', `del map ${ref} ${arg.token('key', key)}`, `delete ${key} from map ${ref}`);
}

export function clearMap(map: string, version?: number): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return runtimeCommand('clear-map', `clear map ${versioned(version)}${ref}`, `clear map ${ref}`);
}

/** Starts an empty new version of a map (reply: "New version created: <v>"), filled with `@<v>` adds. */
export function prepareMap(map: string): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return runtimeCommand('prepare-map', `prepare map ${ref}`, `prepare a new version of map ${ref}`);
}

/** Atomically replaces the map's entries with those of the prepared version. */
export function commitMap(map: string, version: number): RuntimeCommand {
  const ref = arg.mapRef('map', map);
  return runtimeCommand(
    'commit-map',
    `commit map @${arg.int('version', version, 0, arg.MAX_INT)} ${ref}`,
    `commit version ${version} of map ${ref}`,
  );
}
