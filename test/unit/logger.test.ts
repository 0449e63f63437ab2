import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** What a process that logs one warning through createLogger(level, to) prints on each stream. */
async function logOnce(to: 'stdout' | 'stderr'): Promise<{ stdout: string; stderr: string }> {
  const script = [
    "const { createLogger } = await import('./src/logger.ts');",
    `createLogger('info', '${to}').child({ component: 'reconciler' }).warn({ node: 'edge-1' }, 'push failed');`,
  ].join('\n');
  return run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd() });
}

describe('createLogger', () => {
  it('writes structured JSON lines on stdout by default', async () => {
    const { stdout, stderr } = await logOnce('stdout');
    expect(stderr).toBe('');
    expect(JSON.parse(stdout)).toMatchObject({
      level: 40,
      service: 'switchyard',
      component: 'reconciler',
      node: 'edge-1',
      msg: 'push failed',
    });
  });

  it('keeps stdout clean when asked for stderr (a benchmark prints its one JSON line there)', async () => {
    const { stdout, stderr } = await logOnce('stderr');
    expect(stdout).toBe('');
    expect(JSON.parse(stderr)).toMatchObject({ level: 40, component: 'reconciler', msg: 'push failed' });
  });
});
