import type { DesiredRuntime, ObservedRuntime, ObservedServer } from '../domain/runtime-state.js';
import * as cmd from './commands.js';
import { parseServersState, parseShowMap, parseShowSslCert, parseShowStat, type StatRow } from './parse.js';
import type { RuntimeCommand } from './runtime-command.js';
import type { CommandResult } from './runtime-executor.js';

/**
 * Reading what a HAProxy process holds, in one pipelined batch: `show servers state` (addresses,
 * weights, admin and operational states), `show stat` (frontend caps, sessions per server, check
 * verdicts, backup flags), the rate-limit map and each served certificate file.
 */
export function observeCommands(desired: DesiredRuntime): RuntimeCommand[] {
  return [
    cmd.showServersState(),
    cmd.showStat(),
    cmd.showMap(desired.rateLimitMap.file),
    ...desired.certificates.map((c) => cmd.showSslCert(c.file)),
  ];
}

export type Observation = { readonly ok: true; readonly observed: ObservedRuntime } | { readonly ok: false; readonly error: string };

/**
 * Turns the replies to `observeCommands(desired)` into an observation. A refused `show map` or
 * `show ssl cert` means the process has not loaded that file (a reload will); a reply that never
 * came, or a state or stat read that failed, makes the whole observation unusable.
 */
export function readObservation(desired: DesiredRuntime, results: readonly CommandResult[]): Observation {
  const lost = results.find((r) => r.status === 'not-executed');
  if (lost !== undefined) return { ok: false, error: lost.message };
  const [state, stat, map, ...certs] = results;
  for (const r of [state, stat]) {
    if (r === undefined) return { ok: false, error: 'missing replies' };
    if (r.status !== 'ok') return { ok: false, error: `${r.command.line}: ${r.message}` };
  }
  try {
    const stats = parseShowStat(ok(stat));
    const statOf = new Map(stats.filter((r) => r.type === 'server').map((r) => [`${r.pxname}/${r.svname}`, r]));
    const servers = parseServersState(ok(state)).map((row): ObservedServer => {
      const s = statOf.get(`${row.be_name}/${row.srv_name}`);
      return {
        backend: row.be_name,
        name: row.srv_name,
        address: row.srv_addr,
        port: row.srv_port,
        weight: row.srv_uweight,
        admin: row.admin,
        backup: (s?.bck ?? 0) > 0,
        running: row.opState !== 'stopped',
        sessions: s?.scur ?? 0,
        secondsInState: row.srv_time_since_last_change,
        checkStatus: checkStatus(s),
        checkDescription: s?.check_desc ?? null,
      };
    });
    const certificates = new Map<string, string | null>();
    desired.certificates.forEach((c, i) => {
      const r = certs[i];
      certificates.set(c.file, r?.status === 'ok' ? parseShowSslCert(r.output).sha1 : null);
    });
    return {
      ok: true,
      observed: {
        backends: stats.filter((r) => r.type === 'backend').map((r) => r.pxname),
        frontends: stats.filter((r) => r.type === 'frontend').map((r) => ({ name: r.pxname, maxconn: r.slim ?? 0 })),
        servers,
        rateLimitMap: map?.status === 'ok' ? parseShowMap(map.output).map(({ key, value }) => ({ key, value })) : null,
        certificates,
      },
    };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

function ok(result: CommandResult | undefined): string {
  return result?.status === 'ok' ? result.output : '';
}

/** HAProxy prefixes the verdict of a check still in progress with `* `. */
function checkStatus(row: StatRow | undefined): string | null {
  const status = row?.check_status ?? null;
  return status === null ? null : status.replace(/^\* /, '');
}
