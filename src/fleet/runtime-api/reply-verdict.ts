import type { Result } from '../../util/result.js';
import type { CommandKind } from './commands/runtime-command.js';

type Rule = (reply: string) => boolean;
const empty: Rule = (r) => r === '';
const matches =
  (re: RegExp): Rule =>
  (r) =>
    re.test(r);

/** `set server addr` reports what it did: "IP changed from 'a' to 'b', no need to change the port by '...'". */
const ADDR_PART =
  "(?:IP changed from '[^']*' to '[^']*'|no need to change the addr|port changed from '[^']*' to '[^']*'|no need to change the port|nothing changed)";
const SET_ADDR = new RegExp(`^${ADDR_PART}(?:, ${ADDR_PART})*(?: by '[^']*')?$`);

/**
 * What success looks like for each kind, learnt from HAProxy 2.6 itself. Anything else is an
 * error carrying HAProxy's own words: a strict rule per kind catches messages no keyword list
 * would ("entry not found.", "Require 'backend/server'.", "Version number out of range.").
 */
const SUCCESS: Record<CommandKind, Rule> = {
  'show-stat': (r) => r.startsWith('# pxname,'),
  'show-servers-state': (r) => r.startsWith('1\n# be_id '),
  'show-info': (r) => r.startsWith('Name: '),
  'get-weight': matches(/^\d+ \(initial \d+\)$/),
  'set-server-weight': empty,
  'set-server-addr': matches(SET_ADDR),
  'set-server-state': empty,
  'set-server-maxconn': empty,
  'set-frontend-maxconn': empty,
  'add-server': matches(/^New server registered\.$/),
  'enable-server': empty,
  'disable-server': empty,
  'enable-health': empty,
  'disable-health': empty,
  'del-server': matches(/^Server deleted\.$/),
  'show-map': (r) =>
    r === '' || r.split('\n').every((l) => /^0x[0-9a-f]+ \S/.test(l) || /^# id \(file\)|^\d+ \(/.test(l)),
  // A lookup answers found=yes with the entry, or found=no; an unknown map is an error.
  'get-map': matches(/^type=\S+, case=\S+, found=(?:yes|no)\b/),
  'add-map': empty,
  'set-map': empty,
  'del-map': empty,
  'clear-map': empty,
  'prepare-map': matches(/^New version created: \d+$/),
  'commit-map': empty,
  'show-ssl-cert': (r) => r.startsWith('Filename: '),
  'set-ssl-cert': matches(/^Transaction (?:created|updated) for certificate \S+!$/),
  'commit-ssl-cert': matches(/^Committing \S+?\.*\nSuccess!$/),
  'abort-ssl-cert': matches(/^Transaction aborted for certificate '[^']*'!$/),
  'show-proc': (r) => r.startsWith('#<PID>'),
  reload: empty,
};

/** Judges one reply (already stripped of its prompt) for a command of the given kind. */
export function classifyReply(kind: CommandKind, reply: string): Result {
  const text = reply.endsWith('\n') ? reply.replace(/\n+$/, '') : reply;
  const rule = Object.hasOwn(SUCCESS, kind) ? SUCCESS[kind] : undefined;
  if (rule === undefined)
    return { ok: false, message: `no success rule for command kind ${JSON.stringify(kind)}: ${text}` };
  if (rule(text)) return { ok: true, output: text };
  return { ok: false, message: text === '' ? `empty reply where ${kind} prints a result` : text };
}
