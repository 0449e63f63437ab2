import { decimalCell } from './decimal-cell.js';
import { RuntimeParseError } from './runtime-parse-error.js';

/** `show stat` replies: CSV with a row per frontend, backend, server and listener. */

export type StatType = 'frontend' | 'backend' | 'server' | 'listener';
const STAT_TYPES: readonly StatType[] = ['frontend', 'backend', 'server', 'listener'];

const STAT_NUMBERS = [
  'qcur',
  'qmax',
  'scur',
  'smax',
  'slim',
  'stot',
  'bin',
  'bout',
  'dreq',
  'dresp',
  'dcon',
  'dses',
  'ereq',
  'econ',
  'eresp',
  'wretr',
  'wredis',
  'weight',
  'act',
  'bck',
  'chkfail',
  'chkdown',
  'lastchg',
  'downtime',
  'qlimit',
  'pid',
  'iid',
  'sid',
  'throttle',
  'lbtot',
  'rate',
  'rate_lim',
  'rate_max',
  'check_code',
  'check_duration',
  'hrsp_1xx',
  'hrsp_2xx',
  'hrsp_3xx',
  'hrsp_4xx',
  'hrsp_5xx',
  'hrsp_other',
  'req_rate',
  'req_rate_max',
  'req_tot',
  'cli_abrt',
  'srv_abrt',
  'lastsess',
  'qtime',
  'ctime',
  'rtime',
  'ttime',
  'conn_rate',
  'conn_rate_max',
  'conn_tot',
  'uweight',
  'check_rise',
  'check_fall',
  'check_health',
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
  if (header === undefined || !header.startsWith('# pxname,'))
    throw new RuntimeParseError('show stat', 'missing the "# pxname," header');
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
  for (const [f, i] of layout.numbers) row[f] = decimalCell(cell(i));
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
        if (line[i] === '"' && line[i + 1] === '"') {
          cell += '"';
          i += 2;
        } else if (line[i] === '"') {
          i += 1;
          break;
        } else {
          cell += line[i];
          i += 1;
        }
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

/** Named columns of each `show stat` row, as sent (quoted cells unquoted); rows with fewer cells get ''. */
export function parseStatColumns<const K extends string>(text: string, wanted: readonly K[]): Record<K, string>[] {
  const lines = text.split('\n').filter((l) => l !== '');
  const header = lines.shift();
  if (header === undefined || !header.startsWith('# pxname,'))
    throw new RuntimeParseError('show stat', 'missing the "# pxname," header');
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
