import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigDirLock,
  ConfigDirLockedError,
  LOCK_FILE,
  startTicks,
} from '../../../../src/fleet/agent/config-dir-lock.js';

/** The lock on a real directory; other holders are written as a dead or foreign agent would leave them. */

let dir: string;
const lockPath = () => join(dir, LOCK_FILE);
const lockOf = () => new ConfigDirLock(dir, '/etc/switchyard');
const leave = (holder: object) => writeFileSync(lockPath(), JSON.stringify(holder));
const holderNow = () => JSON.parse(readFileSync(lockPath(), 'utf8'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sy-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ConfigDirLock', () => {
  it('lets one holder in, refuses a second naming the first, and lets the next in once released', async () => {
    const first = lockOf();
    expect(await first.acquire()).toEqual({ replaced: null });
    expect(holderNow()).toMatchObject({
      pid: process.pid,
      host: hostname(),
      startTicks: await startTicks(process.pid),
    });
    const second = lockOf();
    const refused = await second.acquire().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConfigDirLockedError);
    expect((refused as Error).message).toMatch(
      new RegExp(`^another agent \\(pid ${process.pid} on ${hostname()}, since .+\\) manages /etc/switchyard`),
    );
    await second.release(); // holds nothing: the first's lock stays
    expect(existsSync(lockPath())).toBe(true);
    await first.release();
    expect(existsSync(lockPath())).toBe(false);
    expect(await second.acquire()).toEqual({ replaced: null });
  });

  it('takes over the lock of an agent that died', async () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    const dead = { pid: gone, startTicks: 12345, host: hostname(), since: '2026-12-01T00:00:00.000Z' };
    leave(dead);
    expect(await lockOf().acquire()).toEqual({ replaced: dead });
    expect(holderNow().pid).toBe(process.pid);
  });

  it('tells a reused pid from its holder by the process start time', async () => {
    // The parent runs, but was not started at these ticks: its pid was reused.
    const parentTicks = (await startTicks(process.ppid))!;
    leave({ pid: process.ppid, startTicks: parentTicks + 1, host: hostname(), since: 'then' });
    expect((await lockOf().acquire()).replaced).toMatchObject({ pid: process.ppid });
    rmSync(lockPath());
    // The same pid at its real start time is a live holder.
    leave({ pid: process.ppid, startTicks: parentTicks, host: hostname(), since: 'then' });
    await expect(lockOf().acquire()).rejects.toThrow(
      `another agent (pid ${process.ppid} on ${hostname()}, since then)`,
    );
  });

  it('counts a holder on another host (a shared file system) as alive', async () => {
    leave({ pid: 1, startTicks: 1, host: 'some-other-node', since: 'then' });
    await expect(lockOf().acquire()).rejects.toThrow('pid 1 on some-other-node');
  });

  it('waits out a lock being written, and takes over one left unreadable by a crash', async () => {
    writeFileSync(lockPath(), '');
    await expect(lockOf().acquire()).rejects.toThrow(ConfigDirLockedError);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath(), old, old);
    expect(await lockOf().acquire()).toEqual({ replaced: null });
    expect(holderNow().pid).toBe(process.pid);
  });

  it('leaves a lock another agent took over alone when it releases', async () => {
    const mine = lockOf();
    await mine.acquire();
    leave({ pid: 1, startTicks: 1, host: 'some-other-node', since: 'then' });
    await mine.release();
    expect(holderNow()).toMatchObject({ host: 'some-other-node' });
  });
});
