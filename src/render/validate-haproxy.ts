import { execFile } from 'node:child_process';
import { setPriority } from 'node:os';
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import type { NodeSnapshot, RenderedFiles } from '../domain/snapshot.js';
import type { Result } from '../util/result.js';
import { renderHaproxyOnce } from './haproxy.js';
import { HAPROXY_FILES } from './haproxy-names.js';

export interface HaproxyCheckOptions {
  /** Defaults to `haproxy` on the PATH. */
  readonly binary?: string;
  readonly timeoutMs?: number;
  /**
   * Niceness for the check (0–19; 0 by default). The control plane validates in the background
   * while it pushes runtime changes: a lower priority keeps a burst of `haproxy -c` runs from
   * taking the CPU those pushes (and the proxies they talk to) need.
   */
  readonly niceness?: number;
}

/** A fresh, not yet existing directory to render for and validate in (no I/O). */
export function haproxyValidationDir(): string {
  return join(tmpdir(), `switchyard-haproxy-${randomUUID()}`);
}

/**
 * Runs the real `haproxy -c` on files rendered for `configDir`. Rendered files refer to each
 * other by absolute path, so they are validated where they point, never rewritten: render for a
 * directory from `haproxyValidationDir()` (or use `validateHaproxySnapshot`). `configDir` must
 * not exist: it is created, filled, checked and removed. Warnings do not fail the check; they are
 * in `output`. On failure `message` is the binary's own output.
 */
export async function validateHaproxy(
  files: RenderedFiles,
  configDir: string,
  options: HaproxyCheckOptions = {},
): Promise<Result> {
  if (!isAbsolute(configDir)) throw new Error(`configDir must be absolute: ${configDir}`);
  await mkdir(configDir, { mode: 0o700 });
  try {
    await writeFiles(configDir, files);
    return await runCheck(
      options.binary ?? 'haproxy',
      join(configDir, HAPROXY_FILES.config),
      options.timeoutMs ?? 60_000,
      options.niceness ?? 0,
    );
  } finally {
    await rm(configDir, { recursive: true, force: true });
  }
}

/** Renders the snapshot for a scratch directory and validates it there. */
export async function validateHaproxySnapshot(
  snapshot: NodeSnapshot,
  options: HaproxyCheckOptions = {},
): Promise<Result> {
  const configDir = haproxyValidationDir();
  const files = renderHaproxyOnce({ ...snapshot, node: { ...snapshot.node, configDir } });
  return validateHaproxy(files, configDir, options);
}

async function writeFiles(configDir: string, files: RenderedFiles): Promise<void> {
  const all: Record<string, string> = { ...files };
  // A node always has a state file once its agent ran `show servers state`; an empty one with
  // only its version line keeps `haproxy -c` from warning about a file this check cannot have.
  all[HAPROXY_FILES.serverState] ??= '1\n';
  for (const [name, content] of Object.entries(all)) {
    const path = join(configDir, name);
    const rel = relative(configDir, path);
    if (isAbsolute(name) || rel.startsWith('..') || rel === '') throw new Error(`file name escapes configDir: ${name}`);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, content, { mode: 0o600 });
  }
}

function runCheck(binary: string, config: string, timeoutMs: number, niceness: number): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      binary,
      ['-c', '-f', config],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim();
        if (error === null) return resolve({ ok: true, output });
        const cause = error as NodeJS.ErrnoException & { killed?: boolean };
        if (cause.killed)
          return resolve({
            ok: false,
            message: `${binary} -c did not finish within ${timeoutMs} ms\n${output}`.trim(),
          });
        if (cause.code === 'ENOENT') return resolve({ ok: false, message: `${binary} not found: ${cause.message}` });
        resolve({ ok: false, message: output || cause.message });
      },
    );
    lowerPriority(child.pid, niceness);
  });
}

/** Best effort: the check is as valid at any priority, so a refusal (or an exited child) is ignored. */
function lowerPriority(pid: number | undefined, niceness: number): void {
  if (pid === undefined || niceness <= 0) return;
  try {
    setPriority(pid, Math.min(19, niceness));
  } catch {
    // ESRCH (already exited) or EACCES: it runs at the normal priority.
  }
}
