import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkVerdict, classifyReply, parseGetWeight, parsePreparedVersion, parseServersState, parseServerStateEntries, parseShowInfo, parseShowMap,
  parseShowProc, parseShowSslCert, parseShowStat, parseStatColumns, parseUptime, RuntimeParseError,
} from '../../../src/fleet/parse.js';

/** Replies captured from HAProxy 2.6.12 on this machine (see test/fixtures/runtime). */
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/runtime/${name}`, import.meta.url), 'utf8');

describe('show stat', () => {
  const rows = parseShowStat(fixture('show-stat.csv'));

  it('gives one typed row per frontend, server and backend', () => {
    expect(rows.map((r) => `${r.pxname}/${r.svname}:${r.type}`)).toEqual([
      'fe_main/FRONTEND:frontend', 'be_app/s1:server', 'be_app/s2:server', 'be_app/s3:server', 'be_app/s4:server',
      'be_app/BACKEND:backend', 'be_other/o1:server', 'be_other/BACKEND:backend',
    ]);
  });

  it('turns counters into numbers and empty cells into null', () => {
    const fe = rows[0]!;
    expect(fe).toMatchObject({ status: 'OPEN', slim: 500, stot: 27, hrsp_4xx: 3, hrsp_5xx: 3, weight: null, check_status: null, qcur: null });
    const s1 = rows.find((r) => r.svname === 's1')!;
    expect(s1).toMatchObject({ status: 'DRAIN', weight: 10, scur: 0, stot: 9, check_status: 'L7OK', check_code: 200, addr: '127.0.0.1:19311', slim: null, iid: 3, sid: 1 });
    expect(typeof s1.req_rate === 'number' || s1.req_rate === null).toBe(true);
    expect(rows.find((r) => r.svname === 's3')).toMatchObject({ status: 'DOWN', check_status: 'L4CON', check_desc: 'Layer4 connection problem' });
    expect(rows.find((r) => r.svname === 'o1')).toMatchObject({ status: 'no check', slim: 40 });
    expect(rows.find((r) => r.pxname === 'be_app' && r.type === 'backend')).toMatchObject({ algo: 'roundrobin', mode: 'http' });
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

describe('show servers state', () => {
  const rows = parseServersState(fixture('show-servers-state.txt'));

  it('skips the version line and the header, and types the columns', () => {
    expect(rows).toHaveLength(5);
    expect(rows[0]).toMatchObject({
      be_id: 3, be_name: 'be_app', srv_id: 1, srv_name: 's1', srv_addr: '127.0.0.1', srv_op_state: 2, srv_admin_state: 8,
      srv_uweight: 10, srv_iweight: 10, srv_port: 19311, srv_fqdn: null, srv_check_addr: null,
    });
  });

  it('derives the operational and administrative state', () => {
    expect(rows.map((r) => `${r.srv_name}:${r.opState}:${r.admin}`)).toEqual([
      's1:running:drain', 's2:running:ready', 's3:stopped:ready', 's4:stopped:maint', 'o1:running:ready',
    ]);
  });

  it('treats a `disabled` server put back with `state ready` as ready: only the config flag (4) is left', () => {
    const header = fixture('show-servers-state.txt').split('\n').slice(0, 2).join('\n');
    const text = `${header}\n3 be 2 s2 127.0.0.1 2 4 10 10 0 1 0 0 8 0 0 0 - 19874 - 0 0 - - 0\n`;
    expect(parseServersState(text).map((r) => `${r.opState}:${r.admin}`)).toEqual(['running:ready']);
  });

  it('refuses an unknown format version', () => {
    expect(() => parseServersState('2\n# be_id be_name\n')).toThrow(/format version/);
    expect(() => parseServersState("Can't find backend.")).toThrow(RuntimeParseError);
  });
});

describe('show servers state, read lean for the reconciler', () => {
  const entries = parseServerStateEntries(fixture('show-servers-state.txt'));

  it('gives what planning and health use, with the ids a scoped show stat takes', () => {
    expect(entries[0]).toEqual({
      proxyId: 3, serverId: 1, backend: 'be_app', name: 's1', address: '127.0.0.1', port: 19311, weight: 10,
      opState: 'running', admin: 'drain', secondsInState: expect.any(Number), check: { status: 'L7OK', description: 'Layer7 check passed' },
    });
    expect(entries.map((e) => `${e.name}:${e.opState}:${e.admin}`)).toEqual(parseServersState(fixture('show-servers-state.txt')).map((r) => `${r.srv_name}:${r.opState}:${r.admin}`));
  });

  it('reads every server of a large reply as the full row reader does, backend by backend', () => {
    const header = fixture('show-servers-state.txt').split('\n').slice(0, 2).join('\n');
    const lines = Array.from({ length: 600 }, (_, i) => {
      const [be, srv] = [Math.floor(i / 200), i % 200];
      return `${be + 3} be_t${be} ${srv + 1} s${srv} 10.0.${be}.${srv} ${i % 4} ${[0, 4, 8, 1][i % 4]} ${i % 257} 1 ${i * 7} ${i % 21} 3 4 ${[6, 2, 14, 7][i % 4]} 0 0 0 - ${1000 + i} - 0 0 - - 0`;
    });
    const text = `${header}\n${lines.join('\n')}\n`;
    const entries = parseServerStateEntries(text);
    const rows = parseServersState(text);
    expect(entries).toHaveLength(600);
    entries.forEach((e, i) => {
      const r = rows[i]!;
      expect([e.proxyId, e.serverId, e.backend, e.name, e.address, e.port, e.weight, e.secondsInState, e.opState, e.admin]).toEqual([
        r.be_id, r.srv_id, r.be_name, r.srv_name, r.srv_addr, r.srv_port, r.srv_uweight, r.srv_time_since_last_change, r.opState, r.admin,
      ]);
      expect(e.check).toEqual(checkVerdict(r.srv_check_state, r.srv_check_status));
    });
    // A reply cut short mid-line reads its missing cells as absent rather than as another column.
    expect(parseServerStateEntries(`${header}\n3 be_a 1 s1 127.0.0.1 2 0\n`)[0]).toMatchObject({ backend: 'be_a', weight: NaN, port: NaN });
  });

  it('leaves parseServersState its raw columns, built when read', () => {
    const row = parseServersState(fixture('show-servers-state.txt'))[0]!;
    expect(row.raw).toMatchObject({ be_name: 'be_app', srv_name: 's1', srv_agent_port: expect.any(String) });
    expect(Object.keys(row)).not.toContain('raw');
  });

  it('refuses what parseServersState refuses, and a reply without a column it needs', () => {
    expect(() => parseServerStateEntries("Can't find backend.")).toThrow(RuntimeParseError);
    expect(() => parseServerStateEntries('1\n# be_id be_name srv_id srv_name\n3 be 1 s1\n')).toThrow(/no srv_addr column/);
  });

  it('decodes the check verdict only while the check is enabled and not paused, as show stat prints it', () => {
    // srv_check_state: 0x02 configured, 0x04 enabled, 0x08 paused (maintenance), 0x01 in progress.
    expect(checkVerdict(0x06, 15)).toEqual({ status: 'L7OK', description: 'Layer7 check passed' });
    expect(checkVerdict(0x07, 8)).toEqual({ status: 'L4CON', description: 'Layer4 connection problem' });
    expect(checkVerdict(0x0e, 15)).toBeNull(); // maintenance pauses the check
    expect(checkVerdict(0x02, 15)).toBeNull(); // `disable health`, or an added server before `enable health`
    expect(checkVerdict(0x00, 1)).toBeNull(); // no check
    expect(checkVerdict(0x06, 16)).toEqual({ status: 'L7OKC', description: 'Layer7 check conditionally passed' });
    expect(checkVerdict(0x06, 99)).toEqual({ status: 'UNK', description: 'Unknown' });
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
    expect(lean.map((r) => [r.pxname, r.svname, r.scur === '' ? null : Number(r.scur), r.slim === '' ? null : Number(r.slim)])).toEqual(
      parseShowStat(text).map((r) => [r.pxname, r.svname, r.scur, r.slim]),
    );
  });

  it('refuses text that is not show stat output', () => {
    expect(() => parseStatColumns('No such proxy.', ['pxname'] as const)).toThrow(RuntimeParseError);
  });
});

describe('show ssl cert', () => {
  it('reads the file name, serial and SHA-1 fingerprint', () => {
    const text = fixture('seed/show-ssl-cert.txt');
    expect(parseShowSslCert(text)).toMatchObject({
      file: '/etc/haproxy/switchyard/certs/b/b-example.pem',
      serial: '55CCD1D69216AEB7F42364A167386D3FABE54CD8',
      sha1: 'DA7BC0EE2949FAD8FE5BF5BF0A131761653FFBF3',
    });
    expect(classifyReply('show-ssl-cert', "Can't display the certificate: Not found or the certificate is a bundle!")).toMatchObject({ ok: false });
  });
});

describe('show info', () => {
  it('gives every field and the ones callers need, typed', () => {
    const info = parseShowInfo(fixture('show-info.txt'));
    expect(info).toMatchObject({ version: '2.6.12-1+deb12u4', pid: 21215, uptimeSec: 60, currConns: expect.any(Number), maxconn: expect.any(Number), stopping: false });
    expect(info.fields.Nbthread).toBe('2');
    expect(info.fields['Unstoppable Jobs']).toBeDefined();
  });
});

describe('show proc (master CLI)', () => {
  it('gives the master with its reload and failed-reload counts, and the workers', () => {
    const procs = parseShowProc(fixture('show-proc.txt'));
    expect(procs.master).toMatchObject({ type: 'master', reloads: 1, failedReloads: 0, version: '2.6.12-1+deb12u4' });
    expect(procs.master.uptimeSec).toBe(11 * 60 + 26);
    expect(procs.workers).toEqual([{ pid: 21215, type: 'worker', reloads: 0, uptimeSec: 61, version: '2.6.12-1+deb12u4', current: true }]);
    expect(procs.programs).toEqual([]);
  });

  it('shows a failed reload: the count goes up and the old worker keeps serving', () => {
    const procs = parseShowProc(fixture('show-proc-failed-reload.txt'));
    expect(procs.master).toMatchObject({ reloads: 2, failedReloads: 1 });
    expect(procs.workers).toEqual([expect.objectContaining({ pid: 21215, reloads: 1, current: true })]);
  });

  it('lists old workers still finishing connections after a reload', () => {
    const procs = parseShowProc(fixture('show-proc-old-worker.txt'));
    expect(procs.workers.map((w) => [w.pid, w.current])).toEqual([[22363, true], [21215, false]]);
    expect(procs.master.failedReloads).toBe(0);
  });

  it('reads uptimes', () => {
    expect(parseUptime('1d02h03m04s')).toBe(93784);
    expect(parseUptime('garbage')).toBeNaN();
  });
});

describe('small replies', () => {
  it('get weight, show map and prepare map', () => {
    expect(parseGetWeight('20 (initial 20)\n')).toEqual({ current: 20, initial: 20 });
    expect(() => parseGetWeight('No such server.')).toThrow(RuntimeParseError);
    expect(parseShowMap(fixture('show-map.txt'))).toEqual([
      { ref: expect.stringMatching(/^0x/), key: 'example.test', value: 'be_app' },
      { ref: expect.stringMatching(/^0x/), key: 't1', value: '100' },
    ]);
    expect(parseShowMap('')).toEqual([]);
    expect(parsePreparedVersion('New version created: 3')).toBe(3);
  });
});

describe('classifyReply', () => {
  it('an empty reply is success for commands that print nothing', () => {
    for (const kind of ['set-server-weight', 'set-server-state', 'set-frontend-maxconn', 'enable-server', 'add-map', 'commit-map', 'reload'] as const) {
      expect(classifyReply(kind, '')).toEqual({ ok: true, output: '' });
      expect(classifyReply(kind, '\n')).toEqual({ ok: true, output: '' });
    }
  });

  it.each([
    ['set-server-weight', 'No such server.'],
    ['set-server-weight', "Require 'backend/server'."],
    ['set-server-weight', 'Absolute weight can only be between 0 and 256 inclusive.'],
    ['set-server-state', "'set server <srv> state' expects 'ready', 'drain' and 'maint'."],
    ['set-frontend-maxconn', 'No such frontend.'],
    ['set-map', 'entry not found.'],
    ['del-map', 'Key not found.'],
    ['add-map', 'Unknown map identifier. Please use #<id> or <file>.'],
    ['commit-map', 'Version number out of range.'],
    ['add-server', 'Already exists a server with the same name in backend.'],
    ['add-server', "'cookie' option is not accepted for dynamic server"],
    ['del-server', 'Only servers in maintenance mode can be deleted.'],
    ['del-server', 'Server still has connections attached to it, cannot remove it.'],
    ['enable-health', 'Health check was not configured on this server, cannot enable.'],
    ['set-server-addr', "Invalid addr '1.2.3.x' by 'stats socket command'"],
    ['set-ssl-cert', "unable to load certificate from file '/c.pem'.\nCan't load the payload\nCan't update /c.pem!"],
    ['commit-ssl-cert', "No ongoing transaction! !\nCan't commit /c.pem!"],
    ['show-stat', 'No such proxy.'],
    ['show-servers-state', "Can't find backend."],
    ['show-info', 'Unknown command, but maybe one of the following ones is a better match:\n  help'],
    ['get-weight', 'No such server.'],
    ['prepare-map', 'Unknown map identifier. Please use #<id> or <file>.'],
  ] as const)('%s: %j is an error with HAProxy\'s message', (kind, reply) => {
    expect(classifyReply(kind, `${reply}\n`)).toEqual({ ok: false, message: reply });
  });

  it('set server addr reports what changed and that is success', () => {
    for (const reply of [
      "IP changed from '127.0.0.1' to '127.0.0.2', no need to change the port by 'stats socket command'",
      "IP changed from '127.0.0.1' to '::1', port changed from '19121' to '19999' by 'stats socket command'",
      "no need to change the addr, no need to change the port by 'stats socket command'",
      'nothing changed',
    ]) expect(classifyReply('set-server-addr', reply)).toEqual({ ok: true, output: reply });
    expect(classifyReply('set-server-addr', '')).toEqual({ ok: false, message: 'empty reply where set-server-addr prints a result' });
  });

  it('knows the fixed success messages of add/del server, maps and certificates', () => {
    expect(classifyReply('add-server', 'New server registered.\n')).toMatchObject({ ok: true });
    expect(classifyReply('del-server', 'Server deleted.')).toMatchObject({ ok: true });
    expect(classifyReply('prepare-map', 'New version created: 1\n')).toMatchObject({ ok: true, output: 'New version created: 1' });
    expect(classifyReply('set-ssl-cert', 'Transaction created for certificate /tmp/hx/site.pem!')).toMatchObject({ ok: true });
    expect(classifyReply('set-ssl-cert', 'Transaction updated for certificate /tmp/hx/site.pem!')).toMatchObject({ ok: true });
    expect(classifyReply('commit-ssl-cert', 'Committing /tmp/hx/site.pem.\nSuccess!\n')).toMatchObject({ ok: true });
    expect(classifyReply('commit-ssl-cert', 'Committing /tmp/hx/site.pem...\nSuccess!')).toMatchObject({ ok: true });
    expect(classifyReply('abort-ssl-cert', "Transaction aborted for certificate '/tmp/hx/site.pem'!")).toMatchObject({ ok: true });
    expect(classifyReply('abort-ssl-cert', 'No ongoing transaction!')).toMatchObject({ ok: false });
  });

  it('accepts real read outputs and refuses error text in their place', () => {
    expect(classifyReply('show-stat', fixture('show-stat.csv'))).toMatchObject({ ok: true });
    expect(classifyReply('show-servers-state', fixture('show-servers-state.txt'))).toMatchObject({ ok: true });
    expect(classifyReply('show-info', fixture('show-info.txt'))).toMatchObject({ ok: true });
    expect(classifyReply('show-proc', fixture('show-proc.txt'))).toMatchObject({ ok: true });
    expect(classifyReply('show-map', fixture('show-map.txt'))).toMatchObject({ ok: true });
    expect(classifyReply('show-map', '')).toMatchObject({ ok: true });
    expect(classifyReply('show-map', 'Unknown map identifier. Please use #<id> or <file>.')).toMatchObject({ ok: false });
    expect(classifyReply('get-weight', '10 (initial 10)\n')).toEqual({ ok: true, output: '10 (initial 10)' });
  });
});
