import type { CommandKind } from './runtime-api/commands/runtime-command.js';

/** Pure parsers for HAProxy 2.6 CLI replies, and the judge of whether a reply means success. */

// ---------------------------------------------------------------- show stat

export type StatType = 'frontend' | 'backend' | 'server' | 'listener';
const STAT_TYPES: readonly StatType[] = ['frontend', 'backend', 'server', 'listener'];

const STAT_NUMBERS = [
  'qcur', 'qmax', 'scur', 'smax', 'slim', 'stot', 'bin', 'bout', 'dreq', 'dresp', 'dcon', 'dses', 'ereq', 'econ', 'eresp',
  'wretr', 'wredis', 'weight', 'act', 'bck', 'chkfail', 'chkdown', 'lastchg', 'downtime', 'qlimit', 'pid',
  'iid', 'sid', 'throttle', 'lbtot', 'rate', 'rate_lim', 'rate_max', 'check_code', 'check_duration',
  'hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other', 'req_rate', 'req_rate_max',
  'req_tot', 'cli_abrt', 'srv_abrt', 'lastsess', 'qtime', 'ctime', 'rtime', 'ttime', 'conn_rate',
  'conn_rate_max', 'conn_tot', 'uweight', 'check_rise', 'check_fall', 'check_health',
] as const;
const STAT_STRINGS = ['status', 'check_status', 'check_desc', 'last_chk', 'addr', 'cookie', 'mode', 'algo'] as const;

export type StatNumberField = (typeof STAT_NUMBERS)[number];
export type StatStringField = (typeof STAT_STRINGS)[number];

/** One `show stat` row. Numbers are numbers, empty cells are null; `raw` keeps every column as sent. */
export type StatRow = { readonly pxname: string; readonly svname: string; readonly type: StatType } & {
  readonly [K in StatNumberField]: number | null;
} & { readonly [K in StatStringField]: string | null } & { readonly raw: Readonly<Record<string, string>> };

/** Parses the CSV of `show stat` (header line `# pxname,svname,...`). */
export function parseShowStat(text: string): StatRow[] {
  const lines = text.split('\n').filter((l) => l !== '');
  const header = lines.shift();
  if (header === undefined || !header.startsWith('# pxname,')) throw new RuntimeParseError('show stat', 'missing the "# pxname," header');
  const columns = splitCsv(header.slice(2));
  // Column positions are looked up once per reply, not per row: a node with 10,000 servers answers
  // 10,000 rows of ~100 cells, and the reconciler reads them on every pass.
  const at = (name: string) => columns.indexOf(name);
  const layout = {
    pxname: at('pxname'),
    svname: at('svname'),
    type: at('type'),
    numbers: STAT_NUMBERS.map((f) => [f, at(f)] as const),
    strings: STAT_STRINGS.map((f) => [f, at(f)] as const),
  };
  return lines.map((line) => statRow(columns, layout, splitCsv(line)));
}

type StatLayout = {
  readonly pxname: number;
  readonly svname: number;
  readonly type: number;
  readonly numbers: readonly (readonly [StatNumberField, number])[];
  readonly strings: readonly (readonly [StatStringField, number])[];
};

function statRow(columns: readonly string[], layout: StatLayout, cells: readonly string[]): StatRow {
  const cell = (i: number) => (i < 0 ? undefined : cells[i]);
  const row: Record<string, unknown> = {
    pxname: cell(layout.pxname) ?? '',
    svname: cell(layout.svname) ?? '',
    type: STAT_TYPES[Number(cell(layout.type))] ?? 'server',
  };
  for (const [f, i] of layout.numbers) row[f] = toNumber(cell(i));
  for (const [f, i] of layout.strings) {
    const v = cell(i);
    row[f] = v === undefined || v === '' ? null : v;
  }
  // Every column by name, built only when someone asks (nothing on the hot path does).
  Object.defineProperty(row, 'raw', {
    enumerable: false,
    get() {
      const raw: Record<string, string> = {};
      columns.forEach((c, i) => {
        if (c !== '' && c !== '-') raw[c] = cells[i] ?? '';
      });
      return raw;
    },
  });
  return row as StatRow;
}

/** HAProxy quotes a CSV cell (doubling inner quotes) only when it holds a comma or a quote. */
function splitCsv(line: string): string[] {
  // Almost every row has no quoted cell: the native split is several times faster.
  if (!line.includes('"')) return line.split(',');
  const cells: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let cell = '';
      i += 1;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') { cell += '"'; i += 2; }
        else if (line[i] === '"') { i += 1; break; }
        else { cell += line[i]; i += 1; }
      }
      cells.push(cell);
      i += 1; // the comma
    } else {
      const end = line.indexOf(',', i);
      cells.push(line.slice(i, end < 0 ? line.length : end));
      i = end < 0 ? line.length + 1 : end + 1;
    }
  }
  return cells;
}

function toNumber(cell: string | undefined): number | null {
  if (cell === undefined || cell === '') return null;
  const n = Number(cell);
  // Number('') and Number(' ') are 0 and Number('0x1f') is 31: only plain decimals count.
  return Number.isFinite(n) && /^-?\d+(?:\.\d+)?$/.test(cell) ? n : null;
}

// ---------------------------------------------------------------- show servers state

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
  'be_id', 'srv_id', 'srv_op_state', 'srv_admin_state', 'srv_uweight', 'srv_iweight', 'srv_time_since_last_change',
  'srv_check_status', 'srv_check_result', 'srv_check_health', 'srv_check_state', 'srv_agent_state', 'srv_port',
  'srv_use_ssl', 'srv_check_port',
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
  if (version !== '1') throw new RuntimeParseError('show servers state', `unsupported format version ${JSON.stringify(version)}`);
  const header = lines.shift();
  if (header === undefined || !header.startsWith('# be_id ')) throw new RuntimeParseError('show servers state', 'missing the "# be_id" header');
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
      columns.forEach((c, i) => (raw[c] = cells[i] ?? ''));
      return raw;
    },
  });
  return row as unknown as ServerStateRow;
}

function adminOf(flags: number): ServerAdmin {
  return flags & ADMF_MAINT ? 'maint' : flags & ADMF_DRAIN ? 'drain' : 'ready';
}

// ---------------------------------------------------------------- lean readers (the reconciler's every pass)

/**
 * HAProxy 2.6's check verdicts (`enum healthcheck_status`) as `show stat` names and describes
 * them in check_status and check_desc. `show servers state` prints the number (srv_check_status);
 * the table was checked against a live 2.6 worker for L4OK, L4CON, L6RSP, L7TOUT, L7RSP, L7OK,
 * L7OKC and L7STS. Null entries are markers HAProxy never stores as a verdict.
 */
const CHECK_VERDICTS: readonly (readonly [string, string] | null)[] = [
  ['UNK', 'Unknown'],
  ['INI', 'Initializing'],
  null, // START
  ['CHECKED', 'No status change'],
  ['HANA', 'Health analyze'],
  ['SOCKERR', 'Socket error'],
  ['L4OK', 'Layer4 check passed'],
  ['L4TOUT', 'Layer4 timeout'],
  ['L4CON', 'Layer4 connection problem'],
  ['L6OK', 'Layer6 check passed'],
  ['L6TOUT', 'Layer6 timeout'],
  ['L6RSP', 'Layer6 invalid response'],
  ['L7TOUT', 'Layer7 timeout'],
  ['L7RSP', 'Layer7 invalid response'],
  null, // L57DATA
  ['L7OK', 'Layer7 check passed'],
  ['L7OKC', 'Layer7 check conditionally passed'],
  ['L7STS', 'Layer7 wrong status'],
  ['PROCERR', 'External check error'],
  ['PROCTOUT', 'External check timeout'],
  ['PROCOK', 'External check passed'],
];

// srv_check_state is the check's state flags (CHK_ST_*), masked with 0x0F.
const CHK_ST_ENABLED = 0x04;
const CHK_ST_PAUSED = 0x08;

/**
 * The verdict `show stat` would print for a server's check: it prints one only while the check is
 * enabled and not paused (a server in maintenance pauses it; `disable health` turns it off).
 */
export function checkVerdict(checkState: number, checkStatus: number): { readonly status: string; readonly description: string } | null {
  if ((checkState & (CHK_ST_ENABLED | CHK_ST_PAUSED)) !== CHK_ST_ENABLED) return null;
  return VERDICTS[checkStatus] ?? VERDICTS[0]!;
}

/** One frozen object per verdict, shared by every server that reports it. */
const VERDICTS = CHECK_VERDICTS.map((v) => (v === null ? null : Object.freeze({ status: v[0], description: v[1] })));

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
  'be_id', 'be_name', 'srv_id', 'srv_name', 'srv_addr', 'srv_op_state', 'srv_admin_state', 'srv_uweight',
  'srv_time_since_last_change', 'srv_check_status', 'srv_check_state', 'srv_port',
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
  if (version !== '1') throw new RuntimeParseError('show servers state', `unsupported format version ${JSON.stringify(version)}`);
  const headerEnd = text.indexOf('\n', versionEnd + 1);
  const header = text.slice(versionEnd + 1, headerEnd < 0 ? text.length : headerEnd);
  if (!header.startsWith('# be_id ')) throw new RuntimeParseError('show servers state', 'missing the "# be_id" header');
  const columns = header.slice(2).split(' ');
  const at = ENTRY_COLUMNS.map((c) => {
    const i = columns.indexOf(c);
    if (i < 0) throw new RuntimeParseError('show servers state', `no ${c} column`);
    return i;
  });
  const [beId, beName, srvId, srvName, addr, op, admin, weight, since, checkStatus, checkState, port] = at as [number, number, number, number, number, number, number, number, number, number, number, number];
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
      const b0 = starts[beName]!, b1 = ends[beName]!;
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

/** Named columns of each `show stat` row, as sent (quoted cells unquoted); rows with fewer cells get ''. */
export function parseStatColumns<const K extends string>(text: string, wanted: readonly K[]): Record<K, string>[] {
  const lines = text.split('\n').filter((l) => l !== '');
  const header = lines.shift();
  if (header === undefined || !header.startsWith('# pxname,')) throw new RuntimeParseError('show stat', 'missing the "# pxname," header');
  const columns = splitCsv(header.slice(2));
  const positions = wanted.map((k) => [k, columns.indexOf(k)] as const);
  const last = Math.max(-1, ...positions.map(([, i]) => i));
  return lines.map((line) => {
    const cells = leadingCells(line, last + 1);
    const row = {} as Record<K, string>;
    for (const [k, i] of positions) row[k] = i < 0 ? '' : (cells[i] ?? '');
    return row;
  });
}

/**
 * The first `count` cells of a CSV line. A row holds ~130 cells and the wanted ones come early:
 * cutting only up to them saves most of the work. A quoted cell among them takes the full parser.
 */
function leadingCells(line: string, count: number): string[] {
  const cells: string[] = [];
  let from = 0;
  while (cells.length < count && from <= line.length) {
    const comma = line.indexOf(',', from);
    const end = comma < 0 ? line.length : comma;
    if (line.charCodeAt(from) === 34 /* " */) return splitCsv(line).slice(0, count);
    cells.push(line.slice(from, end));
    from = end + 1;
  }
  return cells;
}

// ---------------------------------------------------------------- show info

export interface ProcessInfo {
  readonly version: string | null;
  readonly pid: number | null;
  readonly uptimeSec: number | null;
  readonly currConns: number | null;
  readonly maxconn: number | null;
  readonly stopping: boolean;
  /** Every `Name: value` line. */
  readonly fields: Readonly<Record<string, string>>;
}

export function parseShowInfo(text: string): ProcessInfo {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(': ');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 2);
  }
  if (fields.Name === undefined) throw new RuntimeParseError('show info', 'missing the "Name:" line');
  return {
    version: fields.Version ?? null,
    pid: toNumber(fields.Pid),
    uptimeSec: toNumber(fields.Uptime_sec),
    currConns: toNumber(fields.CurrConns),
    maxconn: toNumber(fields.Maxconn),
    stopping: fields.Stopping === '1',
    fields,
  };
}

// ---------------------------------------------------------------- get weight

export function parseGetWeight(text: string): { readonly current: number; readonly initial: number } {
  const m = /^(\d+) \(initial (\d+)\)$/.exec(text.trim());
  if (!m) throw new RuntimeParseError('get weight', `unexpected reply ${JSON.stringify(text.slice(0, 80))}`);
  return { current: Number(m[1]), initial: Number(m[2]) };
}

// ---------------------------------------------------------------- maps

export interface MapEntry {
  /** HAProxy's reference of the entry (an address), usable as `#<ref>` in some commands. */
  readonly ref: string;
  readonly key: string;
  readonly value: string;
}

/** `show map <file>` lines: `0x55d0... key value`. */
export function parseShowMap(text: string): MapEntry[] {
  return text.split('\n').filter((l) => l !== '').map((line) => {
    const m = /^(0x[0-9a-f]+) (\S+) ?(.*)$/.exec(line);
    if (!m) throw new RuntimeParseError('show map', `unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    return { ref: m[1]!, key: m[2]!, value: m[3]! };
  });
}

// ---------------------------------------------------------------- certificates

export interface SslCertInfo {
  readonly file: string;
  /** SHA-1 of the leaf certificate, upper-case hex, as HAProxy prints it. */
  readonly sha1: string | null;
  readonly serial: string | null;
  /** Every `Name: value` line. */
  readonly fields: Readonly<Record<string, string>>;
}

/** `show ssl cert <file>`: `Filename: ...`, `Serial: ...`, `SHA1 FingerPrint: ...` lines. */
export function parseShowSslCert(text: string): SslCertInfo {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  if (fields.Filename === undefined) throw new RuntimeParseError('show ssl cert', 'missing the "Filename:" line');
  return { file: fields.Filename, sha1: fields['SHA1 FingerPrint'] || null, serial: fields.Serial || null, fields };
}

/** The version `prepare map` created ("New version created: 3"). */
export function parsePreparedVersion(text: string): number {
  const m = /^New version created: (\d+)$/.exec(text.trim());
  if (!m) throw new RuntimeParseError('prepare map', `unexpected reply ${JSON.stringify(text.slice(0, 80))}`);
  return Number(m[1]);
}

// ---------------------------------------------------------------- master: show proc

export interface ProcEntry {
  readonly pid: number;
  readonly type: string;
  /** For the master, reloads since it started; for a worker, reloads it has lived through. */
  readonly reloads: number;
  readonly uptimeSec: number;
  readonly version: string;
}

export interface ProcList {
  readonly master: ProcEntry & { readonly failedReloads: number | null };
  /** Current workers first, then workers still finishing their connections after a reload. */
  readonly workers: readonly (ProcEntry & { readonly current: boolean })[];
  readonly programs: readonly ProcEntry[];
}

/** Parses the master CLI's `show proc`; 2.6 prints `<reloads> [failed: N]` for the master. */
export function parseShowProc(text: string): ProcList {
  let section = 'master';
  let master: ProcList['master'] | null = null;
  const workers: (ProcEntry & { current: boolean })[] = [];
  const programs: ProcEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#<PID>') || line.trim() === '') continue;
    if (line.startsWith('#')) { section = line.slice(1).trim(); continue; }
    const m = /^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed: (\d+)\])?\s+(\S+)\s*(\S*)/.exec(line);
    if (!m) throw new RuntimeParseError('show proc', `unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    const entry = { pid: Number(m[1]), type: m[2]!, reloads: Number(m[3]), uptimeSec: parseUptime(m[5]!), version: m[6] ?? '' };
    if (entry.type === 'master') master = { ...entry, failedReloads: m[4] === undefined ? null : Number(m[4]) };
    else if (section === 'programs') programs.push(entry);
    else workers.push({ ...entry, current: section === 'workers' });
  }
  if (master === null) throw new RuntimeParseError('show proc', 'no master line');
  return { master, workers, programs };
}

/** `0d00h00m21s` → 21. */
export function parseUptime(text: string): number {
  const m = /^(\d+)d(\d+)h(\d+)m(\d+)s$/.exec(text);
  if (!m) return NaN;
  return ((Number(m[1]) * 24 + Number(m[2])) * 60 + Number(m[3])) * 60 + Number(m[4]);
}

// ---------------------------------------------------------------- reply classification

export type ReplyVerdict = { readonly ok: true; readonly output: string } | { readonly ok: false; readonly message: string };

type Rule = (reply: string) => boolean;
const empty: Rule = (r) => r === '';
const matches = (re: RegExp): Rule => (r) => re.test(r);

/** `set server addr` reports what it did: "IP changed from 'a' to 'b', no need to change the port by '...'". */
const ADDR_PART = String.raw`(?:IP changed from '[^']*' to '[^']*'|no need to change the addr|port changed from '[^']*' to '[^']*'|no need to change the port|nothing changed)`;
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
  'show-map': (r) => r === '' || r.split('\n').every((l) => /^0x[0-9a-f]+ \S/.test(l) || /^# id \(file\)|^\d+ \(/.test(l)),
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
export function classifyReply(kind: CommandKind, reply: string): ReplyVerdict {
  const text = reply.endsWith('\n') ? reply.replace(/\n+$/, '') : reply;
  const rule = Object.hasOwn(SUCCESS, kind) ? SUCCESS[kind] : undefined;
  if (rule === undefined) return { ok: false, message: `no success rule for command kind ${JSON.stringify(kind)}: ${text}` };
  if (rule(text)) return { ok: true, output: text };
  return { ok: false, message: text === '' ? `empty reply where ${kind} prints a result` : text };
}

export class RuntimeParseError extends Error {
  override readonly name = 'RuntimeParseError';
  constructor(
    readonly what: string,
    detail: string,
  ) {
    super(`cannot parse ${what}: ${detail}`);
  }
}
