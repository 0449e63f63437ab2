import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * `switchyard serve` on PostgreSQL with no SWITCHYARD_ADMIN_TOKEN, as a process: the admin token
 * it generates goes to a 0600 file only. Standard output and error (journald, CI logs) say where
 * it is and never hold the secret.
 */
const BIN = new URL('../../bin/switchyard.mjs', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'sy-admin-token-'));
const running: ChildProcess[] = [];
let database: TestDatabase;
/** One key for every start: what the first start seals (the fleet CA's key) the next one opens. */
const secretKey = randomBytes(32).toString('base64');

interface Run {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function serve(dataDir: string): Run {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: database.url,
    SWITCHYARD_SECRET_KEY: secretKey,
    SWITCHYARD_DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'info',
    SWITCHYARD_RECONCILE: 'false',
    SWITCHYARD_STATS: 'false',
    SWITCHYARD_REBALANCE: 'false',
  };
  delete env.SWITCHYARD_ADMIN_TOKEN;
  const child = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((ok) => child.once('exit', ok));
  return { child, output: () => output, exited };
}

/** Waits (bounded) for the `listening` log line and returns the URL it names. */
async function listening(run: Run): Promise<string> {
  const url = (): string => {
    const m = /"url":"(http:\/\/[^"]+)"/.exec(run.output());
    if (m) return m[1]!;
    throw new Error(run.child.exitCode === null ? 'no "listening" line yet' : `exited with ${run.child.exitCode}`);
  };
  // A process that exited ends the wait at once rather than at the timeout.
  const exited = run.exited.then(() => url());
  return Promise.race([vi.waitFor(url, { timeout: 60_000, interval: 100 }), exited]).catch((err: unknown) => {
    throw new Error(`no "listening" line within 60 s (${String(err)}): ${run.output()}`, { cause: err });
  });
}

async function stop(run: Run): Promise<void> {
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
}

const adminTokens = async () =>
  database.handle.db.selectFrom('api_tokens').select('name').where('role', '=', 'admin').execute();

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
  await database?.drop();
});

describe('the first-start admin token', () => {
  it('when the data directory cannot be written, then the start fails naming it and no admin token is left that nobody holds', async () => {
    const blocker = join(scratch, 'not-a-directory');
    writeFileSync(blocker, '');
    const run = serve(join(blocker, 'data'));
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain(`cannot save the generated admin token in ${join(blocker, 'data', 'admin-token')}`);
    expect(run.output()).toContain('set SWITCHYARD_ADMIN_TOKEN');
    expect(await adminTokens()).toEqual([]);
  }, 60_000);

  it('is written to a 0600 file only, and the logs say where it is, never what it is', async () => {
    const dataDir = join(scratch, 'data');
    const run = serve(dataDir);
    const url = await listening(run);
    const file = join(dataDir, 'admin-token');
    const token = readFileSync(file, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(24);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(run.output()).not.toContain(token);
    expect(run.output()).toContain(`saved it in ${file} (mode 0600`);
    const res = await fetch(`${url}/v1/tenants`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    await stop(run);
    expect(run.output()).not.toContain(token);

    // A later start finds the admin and generates nothing: the file keeps the one secret.
    const again = serve(dataDir);
    await listening(again);
    await stop(again);
    expect(again.output()).not.toContain('Generated an admin token');
    expect(readFileSync(file, 'utf8').trim()).toBe(token);
  }, 120_000);
});
