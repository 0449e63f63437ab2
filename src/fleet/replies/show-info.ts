import { decimalCell } from './decimal-cell.js';
import { RuntimeParseError } from './runtime-parse-error.js';

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
    pid: decimalCell(fields.Pid),
    uptimeSec: decimalCell(fields.Uptime_sec),
    currConns: decimalCell(fields.CurrConns),
    maxconn: decimalCell(fields.Maxconn),
    stopping: fields.Stopping === '1',
    fields,
  };
}
