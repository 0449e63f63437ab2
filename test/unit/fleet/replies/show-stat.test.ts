import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RuntimeParseError } from '../../../../src/fleet/replies/runtime-parse-error.js';
import { parseShowStat, parseStatColumns } from '../../../../src/fleet/replies/show-stat.js';

/** Replies captured from HAProxy 2.6.12 on this machine (see test/fixtures/runtime). */
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/runtime/${name}`, import.meta.url), 'utf8');

describe('show stat', () => {
  const rows = parseShowStat(fixture('show-stat.csv'));

  it('gives one typed row per frontend, server and backend', () => {
    expect(rows.map((r) => `${r.pxname}/${r.svname}:${r.type}`)).toEqual([
      'fe_main/FRONTEND:frontend',
      'be_app/s1:server',
      'be_app/s2:server',
      'be_app/s3:server',
      'be_app/s4:server',
      'be_app/BACKEND:backend',
      'be_other/o1:server',
      'be_other/BACKEND:backend',
    ]);
  });

  it('turns counters into numbers and empty cells into null', () => {
    const fe = rows[0]!;
    expect(fe).toMatchObject({
      status: 'OPEN',
      slim: 500,
      stot: 27,
      hrsp_4xx: 3,
      hrsp_5xx: 3,
      weight: null,
      check_status: null,
      qcur: null,
    });
    const s1 = rows.find((r) => r.svname === 's1')!;
    expect(s1).toMatchObject({
      status: 'DRAIN',
      weight: 10,
      scur: 0,
      stot: 9,
      check_status: 'L7OK',
      check_code: 200,
      addr: '127.0.0.1:19311',
      slim: null,
      iid: 3,
      sid: 1,
    });
    expect(typeof s1.req_rate === 'number' || s1.req_rate === null).toBe(true);
    expect(rows.find((r) => r.svname === 's3')).toMatchObject({
      status: 'DOWN',
      check_status: 'L4CON',
      check_desc: 'Layer4 connection problem',
    });
    expect(rows.find((r) => r.svname === 'o1')).toMatchObject({ status: 'no check', slim: 40 });
    expect(rows.find((r) => r.pxname === 'be_app' && r.type === 'backend')).toMatchObject({
      algo: 'roundrobin',
      mode: 'http',
    });
  });

  it('keeps every column in raw', () => {
    expect(rows[1]!.raw.h1_total_connections).toBeDefined();
    expect(Object.keys(rows[1]!.raw)).not.toContain('');
  });

  it('parses a reply scoped to one proxy and its servers', () => {
    const scoped = parseShowStat(fixture('show-stat-scoped.csv'));
    expect(scoped.map((r) => r.svname)).toEqual(['s1', 's2', 's3', 's4']);
  });

  it('reads quoted cells the way HAProxy writes a comma inside one', () => {
    const header = '# pxname,svname,status,check_desc,type,';
    const [row] = parseShowStat(`${header}\nbe,s1,DOWN,"Layer7 wrong status, ""503""",2,\n`);
    expect(row).toMatchObject({ check_desc: 'Layer7 wrong status, "503"', type: 'server' });
  });

  it('refuses text that is not show stat output', () => {
    expect(() => parseShowStat('No such proxy.')).toThrow(RuntimeParseError);
  });
});

describe('show stat, named columns only', () => {
  it('reads the wanted cells of each row, unquoting a quoted cell among them', () => {
    const header = '# pxname,svname,qcur,qmax,scur,smax,slim,status,check_desc,type,';
    const text = `${header}\nfe,FRONTEND,,,3,5,500,OPEN,,0,\nbe,"s,1",0,0,2,2,,DOWN,"wrong, ""503""",2,\nbe,BACKEND\n`;
    expect(parseStatColumns(text, ['pxname', 'svname', 'scur', 'slim', 'type', 'nope'] as const)).toEqual([
      { pxname: 'fe', svname: 'FRONTEND', scur: '3', slim: '500', type: '0', nope: '' },
      { pxname: 'be', svname: 's,1', scur: '2', slim: '', type: '2', nope: '' },
      { pxname: 'be', svname: 'BACKEND', scur: '', slim: '', type: '', nope: '' },
    ]);
  });

  it('agrees with parseShowStat on a captured reply', () => {
    const text = fixture('show-stat.csv');
    const lean = parseStatColumns(text, ['pxname', 'svname', 'scur', 'slim'] as const);
    expect(
      lean.map((r) => [
        r.pxname,
        r.svname,
        r.scur === '' ? null : Number(r.scur),
        r.slim === '' ? null : Number(r.slim),
      ]),
    ).toEqual(parseShowStat(text).map((r) => [r.pxname, r.svname, r.scur, r.slim]));
  });

  it('refuses text that is not show stat output', () => {
    expect(() => parseStatColumns('No such proxy.', ['pxname'] as const)).toThrow(RuntimeParseError);
  });
});
