import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { UpstreamError } from '../domain/errors.js';
import type { RenderedFiles } from '../domain/snapshot.js';
import { NGINX_FILES } from './nginx-names.js';

export type NginxValidation =
  | { readonly ok: true; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly message: string };

export interface ValidateNginxOptions {
  readonly nginxBin?: string;
  readonly timeoutMs?: number;
  /**
   * Run `nginx -t` in a network namespace of its own (default: true). `nginx -t` binds every
   * `listen` address, and a VIP address is rarely local where the config is validated (the
   * control plane, or a standby node): in a fresh namespace with `ip_nonlocal_bind` any address
   * and port binds, nothing else listening can clash, and no socket is ever reachable. Needs root
   * or unprivileged user namespaces; without isolation every VIP address must be local.
   */
  readonly isolateNetwork?: boolean;
}

/**
 * Runs inside the new namespace: allows non-local binds there, then runs nginx and passes on
 * its exit status. A fixed program, with paths passed as arguments: no shell, nothing to inject.
 */
const NETNS_HELPER = `
const fs = require('node:fs');
for (const family of ['ipv4', 'ipv6']) {
  try { fs.writeFileSync('/proc/sys/net/' + family + '/ip_nonlocal_bind', '1'); } catch (e) { if (family === 'ipv4') throw e; }
}
const [timeout, bin, ...args] = process.argv.slice(1);
const r = require('node:child_process').spawnSync(bin, args, { stdio: 'inherit', timeout: Number(timeout), killSignal: 'SIGKILL' });
if (r.error) { console.error(String(r.error)); process.exit(125); }
process.exit(r.status ?? 125);
`;

/**
 * Validates rendered NGINX files with the real binary: writes them to a fresh temporary
 * directory, runs `nginx -t -c <dir>/nginx.conf -p <dir>/` and removes the directory again.
 * `configDir` is the directory the files were rendered for (default: read from the `pid` line
 * the renderer writes); references to it in nginx.conf are pointed at the temporary copy, so
 * the very bytes a node will run are tested without touching the node's directory.
 * Returns nginx's own message when it refuses the config; throws `UpstreamError` when the
 * validator itself cannot run (no binary, no namespace, timeout).
 */
export async function validateNginx(
  files: RenderedFiles,
  configDir?: string,
  options: ValidateNginxOptions = {},
): Promise<NginxValidation> {
  const config = files[NGINX_FILES.config];
  if (config === undefined) throw new UpstreamError(`nothing to validate: ${NGINX_FILES.config} is missing`);
  const renderedFor = configDir ?? renderedConfigDir(config);
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-nginx-'));
  try {
    await writeFiles(dir, { ...files, [NGINX_FILES.config]: retarget(config, renderedFor, dir) });
    return await runNginxTest(dir, options);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function renderedConfigDir(config: string): string {
  const match = /^pid (\/\S*)\/nginx\.pid;$/m.exec(config);
  if (match === null) throw new UpstreamError('cannot tell which configDir nginx.conf was rendered for: give it');
  return match[1]!;
}

/** Every path the renderer prints stands after a space or a quote and starts with configDir and `/`. */
function retarget(config: string, from: string, to: string): string {
  const prefix = from.endsWith('/') ? from : `${from}/`;
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return config.replace(new RegExp(`(?<=[ "])${escaped}`, 'g'), `${to}/`);
}

async function writeFiles(dir: string, files: RenderedFiles): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const target = normalize(join(dir, name));
    if (name.startsWith('/') || !target.startsWith(`${dir}/`))
      throw new UpstreamError(`refusing to write ${JSON.stringify(name)} outside the validation directory`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
  }
  // nginx workers run as an unprivileged user; the master alone reads the files, but -t checks temp paths.
  await chmod(dir, 0o755);
}

async function runNginxTest(dir: string, options: ValidateNginxOptions): Promise<NginxValidation> {
  const bin = options.nginxBin ?? 'nginx';
  const timeoutMs = options.timeoutMs ?? 60_000;
  const args = ['-t', '-q', '-c', join(dir, NGINX_FILES.config), '-p', `${dir}/`];
  const root = process.getuid?.() === 0;
  // Without root, a user namespace maps us to root: nginx then chowns its temp directories to
  // its default worker user, which the namespace cannot map; `user root` there is us again.
  const [file, argv] =
    options.isolateNetwork === false
      ? [bin, args]
      : [
          'unshare',
          [
            '--net',
            ...(root ? [] : ['--map-root-user']),
            '--',
            process.execPath,
            '-e',
            NETNS_HELPER,
            String(timeoutMs),
            bin,
            ...args,
            ...(root ? [] : ['-g', 'user root;']),
          ],
        ];
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // the helper is plain JavaScript: no loaders of the calling process
  const result = await run(file, argv, timeoutMs + 5_000, env);
  const output = result.output.trim();
  if (result.spawnError !== null) throw new UpstreamError(`cannot run ${file}: ${result.spawnError}`);
  if (/^unshare: /m.test(output) || result.code === 125)
    throw new UpstreamError(`cannot run nginx -t in a network namespace: ${output}`);
  if (result.code !== 0) return { ok: false, message: output || `nginx -t exited with ${result.code}` };
  return { ok: true, warnings: output.split('\n').filter((line) => line.includes('[warn]')) };
}

interface RunResult {
  readonly code: number | null;
  readonly output: string;
  readonly spawnError: string | null;
}

function run(file: string, args: readonly string[], timeout: number, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout, killSignal: 'SIGKILL', env, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const output = `${stderr}${stdout}`;
        if (error === null) return resolve({ code: 0, output, spawnError: null });
        const code = typeof error.code === 'number' ? error.code : null;
        if (error.killed) return resolve({ code: null, output, spawnError: `timed out after ${timeout} ms` });
        if (code === null) return resolve({ code: null, output, spawnError: error.message });
        resolve({ code, output, spawnError: null });
      },
    );
  });
}
