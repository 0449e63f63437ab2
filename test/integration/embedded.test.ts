import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../../src/db/migrate.js';

/**
 * The quick start as a newcomer runs it: `switchyard serve` with no DATABASE_URL, on the embedded
 * PGlite database under a data directory; then a restart on the same directory.
 */
const BIN = new URL('../../bin/switchyard.mjs', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'sy-embedded-'));
const running: ChildProcess[] = [];

interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  readonly stderr: () => string;
  /** The JSON log lines so far. */
  readonly stdout: () => string;
}

async function serve(): Promise<Served> {
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHYARD_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'info' };
  delete env.DATABASE_URL;
  delete env.SWITCHYARD_ADMIN_TOKEN;
  delete env.SWITCHYARD_SECRET_KEY;
  const child = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no "listening" line within 90 s; stderr: ${err}`)), 90_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(m[1]!);
      }
    });
    child.once('exit', (code) => fail(new Error(`exited with ${code}: ${err}`)));
  });
  return { child, url, stderr: () => err, stdout: () => out };
}

async function stop(s: Served): Promise<void> {
  const exited = new Promise<number | null>((ok) => s.child.once('exit', ok));
  s.child.kill('SIGTERM');
  expect(await exited).toBe(0);
}

afterAll(() => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('embedded default (no DATABASE_URL)', () => {
  it('starts on PGlite, saves the admin token to a 0600 file and prints only where, keeps state across a restart', async () => {
    const first = await serve();
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    expect(first.stderr()).not.toContain(token);
    expect(first.stderr()).toContain(`saved it in ${join(dataDir, 'admin-token')}`);
    expect(statSync(join(dataDir, 'admin-token')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'secret.key')).mode & 0o777).toBe(0o600);

    // A first start says what it is doing while it creates the database and migrates it.
    const migrations = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{4}-.*\.ts$/.test(f)).length;
    expect(first.stdout()).toContain('"msg":"creating the embedded database');
    expect(first.stdout()).toContain('"msg":"embedded database created"');
    for (const n of [1, migrations]) expect(first.stdout()).toContain(`"msg":"applying migrations ${n}/${migrations}"`);

    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    const created = await fetch(`${first.url}/v1/tenants`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ id: 'a', reservation: { vcpu: 2, memoryMb: 4096 } }),
    });
    expect(created.status).toBe(201);
    await stop(first);

    const second = await serve();
    expect(second.stderr()).not.toContain('Generated an admin token');
    expect(second.stdout()).not.toContain('creating the embedded database');
    expect(second.stdout()).not.toContain('applying migrations');
    const got = await fetch(`${second.url}/v1/tenants/a`, { headers: auth });
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ id: 'a', reservation: { vcpu: 2, memoryMb: 4096 } });
    await stop(second);
  }, 240_000);
});
