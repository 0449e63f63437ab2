import { checkVerdict } from './check-verdict.js';
import { RuntimeParseError } from './runtime-parse-error.js';

/**
 * `show servers state` replies: a format-version line, a header, a line per server. Read in full
 * (`parseServersState`, every column) or lean (`parseServerStateEntries`, the reconciler's every pass).
 */

export type ServerOpState = 'stopped' | 'starting' | 'running' | 'stopping';
const OP_STATES: readonly ServerOpState[] = ['stopped', 'starting', 'running', 'stopping'];

/** The administrative state the Runtime API sets, derived from srv_admin_state's flags. */
export type ServerAdmin = 'ready' | 'drain' | 'maint';

// HAProxy's SRV_ADMF_* flags: forced / inherited / resolution maintenance, forced / inherited drain.
// Config maintenance (0x04, the `disabled` keyword) is left out: the keyword sets it together with
// forced maintenance, and `set server ... state ready` clears only the latter, leaving 0x04 on a
// server that runs and takes traffic (measured on 2.6: admin state 5, then 4 with op state 2).
const ADMF_MAINT = 0x01 | 0x02 | 0x20;
const ADMF_DRAIN = 0x08 | 0x10;

export interface ServerStateRow {
  readonly be_id: number;
  readonly be_name: string;
  readonly srv_id: number;
  readonly srv_name: string;
  readonly srv_addr: string;
  readonly srv_op_state: number;
  readonly srv_admin_state: number;
  readonly srv_uweight: number;
  readonly srv_iweight: number;
  readonly srv_time_since_last_change: number;
  readonly srv_check_status: number;
  readonly srv_check_result: number;
  readonly srv_check_health: number;
  readonly srv_check_state: number;
  readonly srv_agent_state: number;
  readonly srv_fqdn: string | null;
  readonly srv_port: number;
  readonly srv_use_ssl: number;
  readonly srv_check_port: number;
  readonly srv_check_addr: string | null;
  readonly opState: ServerOpState;
  readonly admin: ServerAdmin;
  /** Every column as sent, by header name. */
  readonly raw: Readonly<Record<string, string>>;
}

const STATE_NUMBERS = [
  'be_id',
  'srv_id',
  'srv_op_state',
  'srv_admin_state',
  'srv_uweight',
  'srv_iweight',
  'srv_time_since_last_change',
  'srv_check_status',
  'srv_check_result',
  'srv_check_health',
  'srv_check_state',
  'srv_agent_state',
  'srv_port',
  'srv_use_ssl',
  'srv_check_port',
] as const;

/** Parses `show servers state`: a format-version line (`1`), a `# be_id ...` header, space-separated rows. */
export function parseServersState(text: string): ServerStateRow[] {
  const { columns, lines } = serversStateTable(text);
  // Positions once per reply; `raw` is built only when read (the hot paths never read it).
  const at = (name: string) => columns.indexOf(name);
  const layout = {
    be_name: at('be_name'),
    srv_name: at('srv_name'),
    srv_addr: at('srv_addr'),
    srv_fqdn: at('srv_fqdn'),
    srv_check_addr: at('srv_check_addr'),
    numbers: STATE_NUMBERS.map((f) => [f, at(f)] as const),
  };
  return lines.map((line) => serverStateRow(columns, layout, line.split(' ')));
}

type StateLayout = {
  readonly be_name: number;
  readonly srv_name: number;
  readonly srv_addr: number;
  readonly srv_fqdn: number;
  readonly srv_check_addr: number;
  readonly numbers: readonly (readonly [(typeof STATE_NUMBERS)[number], number])[];
};

/** The header's column names and the data lines of a `show servers state` reply (version 1). */
function serversStateTable(text: string): { columns: string[]; lines: string[] } {
  const lines = text.split('\n').filter((l) => l !== '');
  const version = lines.shift();
  if (version !== '1')
    throw new RuntimeParseError('show servers state', `unsupported format version ${JSON.stringify(version)}`);
  const header = lines.shift();
  if (header === undefined || !header.startsWith('# be_id '))
    throw new RuntimeParseError('show servers state', 'missing the "# be_id" header');
  return { columns: header.slice(2).split(' '), lines };
}

function serverStateRow(columns: readonly string[], layout: StateLayout, cells: readonly string[]): ServerStateRow {
  const cell = (i: number) => (i < 0 ? undefined : cells[i]);
  const dash = (v: string | undefined): string | null => (v === undefined || v === '-' || v === '' ? null : v);
  const row: Record<string, unknown> = {
    be_name: cell(layout.be_name) ?? '',
    srv_name: cell(layout.srv_name) ?? '',
    srv_addr: cell(layout.srv_addr) ?? '',
    srv_fqdn: dash(cell(layout.srv_fqdn)),
    srv_check_addr: dash(cell(layout.srv_check_addr)),
  };
  for (const [f, i] of layout.numbers) row[f] = Number(cell(i) ?? NaN);
  const flags = row.srv_admin_state as number;
  row.opState = OP_STATES[row.srv_op_state as number] ?? 'stopped';
  row.admin = adminOf(flags);
  Object.defineProperty(row, 'raw', {
    enumerable: false,
    get() {
      const raw: Record<string, string> = {};
      columns.forEach((c, i) => {
        raw[c] = cells[i] ?? '';
      });
      return raw;
    },
  });
  return row as unknown as ServerStateRow;
}

function adminOf(flags: number): ServerAdmin {
  return flags & ADMF_MAINT ? 'maint' : flags & ADMF_DRAIN ? 'drain' : 'ready';
}

/** One server as change planning and health reporting read it from `show servers state`. */
export interface ServerStateEntry {
  /** Numeric ids (be_id, srv_id): what scopes `show stat <iid> 4 <sid>` to this one server. */
  readonly proxyId: number;
  readonly serverId: number;
  readonly backend: string;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly opState: ServerOpState;
  readonly admin: ServerAdmin;
  readonly secondsInState: number;
  readonly check: { readonly status: string; readonly description: string } | null;
}

const ENTRY_COLUMNS = [
  'be_id',
  'be_name',
  'srv_id',
  'srv_name',
  'srv_addr',
  'srv_op_state',
  'srv_admin_state',
  'srv_uweight',
  'srv_time_since_last_change',
  'srv_check_status',
  'srv_check_state',
  'srv_port',
] as const;

/**
 * `show servers state` read for the reconciler, on every pass: one scan of the reply, cutting
 * out only the cells it uses (located once, from the header) and reading numbers in place. A
 * 10,000-server reply (~1 MB) parses in a few milliseconds; splitting every line into its ~30
 * cells took four times as long and made as much garbage.
 */
export function parseServerStateEntries(text: string): ServerStateEntry[] {
  const versionEnd = text.indexOf('\n');
  const version = text.slice(0, versionEnd < 0 ? text.length : versionEnd);
  if (version !== '1')
    throw new RuntimeParseError('show servers state', `unsupported format version ${JSON.stringify(version)}`);
  const headerEnd = text.indexOf('\n', versionEnd + 1);
  const header = text.slice(versionEnd + 1, headerEnd < 0 ? text.length : headerEnd);
  if (!header.startsWith('# be_id ')) throw new RuntimeParseError('show servers state', 'missing the "# be_id" header');
  const columns = header.slice(2).split(' ');
  const at = ENTRY_COLUMNS.map((c) => {
    const i = columns.indexOf(c);
    if (i < 0) throw new RuntimeParseError('show servers state', `no ${c} column`);
    return i;
  });
  const [beId, beName, srvId, srvName, addr, op, admin, weight, since, checkStatus, checkState, port] = at as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const last = Math.max(...at);
  // Cell boundaries of the current line, by column index, up to the last column used.
  const starts = new Int32Array(last + 1);
  const ends = new Int32Array(last + 1);
  const num = (i: number): number => cellNumber(text, starts[i]!, ends[i]!);
  const out: ServerStateEntry[] = [];
  let backend = '';
  for (let from = headerEnd < 0 ? text.length : headerEnd + 1; from < text.length; ) {
    let end = text.indexOf('\n', from);
    if (end < 0) end = text.length;
    if (end > from) {
      let cell = 0;
      for (let p = from; cell <= last; cell++) {
        const space = text.indexOf(' ', p);
        const stop = space < 0 || space > end ? end : space;
        starts[cell] = p;
        ends[cell] = stop;
        if (stop === end) break;
        p = stop + 1;
      }
      // A short line (a truncated reply) leaves the missing cells empty, as the row reader does.
      for (let c = cell + 1; c <= last; c++) starts[c] = ends[c] = end;
      // Servers come grouped by backend: one string per backend, not one per line.
      const b0 = starts[beName]!,
        b1 = ends[beName]!;
      if (b1 - b0 !== backend.length || !text.startsWith(backend, b0)) backend = text.slice(b0, b1);
      out.push({
        proxyId: num(beId),
        serverId: num(srvId),
        backend,
        name: text.slice(starts[srvName]!, ends[srvName]!),
        address: text.slice(starts[addr]!, ends[addr]!),
        port: num(port),
        weight: num(weight),
        opState: OP_STATES[num(op)] ?? 'stopped',
        admin: adminOf(num(admin)),
        secondsInState: num(since),
        check: checkVerdict(num(checkState), num(checkStatus)),
      });
    }
    from = end + 1;
  }
  return out;
}

/** The number in text[start, end): digits are read in place; anything else goes through Number() (NaN for an empty cell, as before). */
function cellNumber(text: string, start: number, end: number): number {
  if (end === start || end - start > 15) return Number(text.slice(start, end) || NaN);
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number(text.slice(start, end));
    value = value * 10 + d;
  }
  return value;
}
