import { RuntimeParseError } from './runtime-parse-error.js';

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
