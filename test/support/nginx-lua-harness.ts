import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { poll } from './poll.js';

/**
 * A real nginx with Debian's Lua module and the Switchyard Lua module straight from
 * `templates/nginx/lua/`, set up as the rendered config sets it up (the dictionaries, init,
 * init_worker, the runtime channel's mTLS server), around the upstream and server blocks a test
 * gives. nginx runs in the foreground (`daemon off`), so the spawned process is the master: the
 * test reloads it (HUP) and stops it by that PID, and finds its workers by their parent PID.
 */

export const LUA_DIR = fileURLToPath(new URL('../../templates/nginx/lua/', import.meta.url));
const MODULES = '/usr/lib/nginx/modules';

/** Every upstream's block, as the renderer writes it: one shared chunk of Lua for all of them. */
export const BALANCER_BLOCK = 'balancer_by_lua_block { require("switchyard.balancer").balance() }';

export function upstreamBlock(name: string, keepalive = 16): string {
  return `upstream ${name} { server 0.0.0.1; ${BALANCER_BLOCK} keepalive ${keepalive}; }`;
}

/** A tenant's HTTP server: each location proxies to an upstream named in `$sy_upstream`. */
export function tenantServer(listen: string, locations: Readonly<Record<string, string>>): string {
  const blocks = Object.entries(locations).map(
    ([path, upstream]) => `location ${path} { set $sy_upstream ${upstream}; proxy_pass http://${upstream}; }`,
  );
  return [
    'server {',
    `  listen ${listen};`,
    '  header_filter_by_lua_block { require("switchyard.balancer").header_filter() }',
    ...blocks.map((b) => `  ${b}`),
    '}',
  ].join('\n');
}

/** The runtime channel's TLS material: the node's certificate and the CA its clients must come from. */
export interface ChannelTls {
  readonly certPath: string;
  readonly keyPath: string;
  readonly clientCaPath: string;
}

export interface LuaNginxOptions {
  /** Upstream and server blocks for the http context. */
  readonly http: string;
  readonly workers?: number;
  /** Written as runtime-state.json before nginx starts. */
  readonly stateFile?: unknown;
  /** The runtime channel on `host:port` (mTLS). */
  readonly channel?: { readonly host: string; readonly port: number; readonly tls: ChannelTls };
  /** Sizes of the shared dictionaries, such as `{ sy_state: '1m' }`. */
  readonly dicts?: Readonly<Record<string, string>>;
  /** A directory searched for Lua modules before the templates' (a test's stand-in for a module not built yet). */
  readonly luaPathFirst?: string;
  /** Passed to switchyard.init.init() besides stateFile. */
  readonly init?: Readonly<Record<string, number>>;
}

const DICTS = { sy_state: '16m', sy_live: '4m', sy_locks: '1m', sy_health: '4m', sy_stats: '16m' };

export function luaNginxConfig(dir: string, options: LuaNginxOptions): string {
  const dicts = { ...DICTS, ...options.dicts };
  const init = { stateFile: join(dir, 'runtime-state.json'), ...options.init };
  const channel = options.channel;
  return [
    `load_module ${MODULES}/ndk_http_module.so;`,
    `load_module ${MODULES}/ngx_http_lua_module.so;`,
    `worker_processes ${options.workers ?? 2};`,
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} notice;`,
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, `temp-${t}`)};`),
    `  lua_package_path "${options.luaPathFirst === undefined ? '' : `${options.luaPathFirst}/?.lua;`}${LUA_DIR}?.lua;;";`,
    ...Object.entries(dicts).map(([name, size]) => `  lua_shared_dict ${name} ${size};`),
    `  init_by_lua_block { require("switchyard.init").init(${luaTable(init)}) }`,
    '  init_worker_by_lua_block { require("switchyard.init").init_worker() }',
    // As the rendered config: the count is given back as the answer ends, else in the log phase
    // (there by stats.log(); this harness has no stats).
    '  body_filter_by_lua_block { require("switchyard.balancer").body_filter() }',
    '  log_by_lua_block { require("switchyard.balancer").release() }',
    '  proxy_http_version 1.1;',
    '  proxy_set_header Connection "";',
    '  proxy_next_upstream error timeout;',
    options.http,
    ...(channel === undefined
      ? []
      : [
          '  server {',
          `    listen ${channel.host}:${channel.port} ssl;`,
          `    ssl_certificate ${channel.tls.certPath};`,
          `    ssl_certificate_key ${channel.tls.keyPath};`,
          `    ssl_client_certificate ${channel.tls.clientCaPath};`,
          '    ssl_verify_client on;',
          '    client_max_body_size 64m;',
          '    client_body_buffer_size 64m;',
          '    location /switchyard/v1/ { content_by_lua_block { require("switchyard.admin").handle() } }',
          '    location / { return 404; }',
          '  }',
        ]),
    '}',
    '',
  ].join('\n');
}

function luaTable(values: Readonly<Record<string, string | number>>): string {
  const fields = Object.entries(values).map(([k, v]) => `${k} = ${typeof v === 'number' ? v : JSON.stringify(v)}`);
  return `{ ${fields.join(', ')} }`;
}

interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly title: string;
}

function children(parent: number): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      found.push({ pid: Number(entry), ppid, title });
    } catch {
      // The process ended while it was being read.
    }
  }
  return found;
}

export class LuaNginx {
  private exited = false;
  /** What nginx printed before its error log was open (a config it refused). */
  private stderr = '';

  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
    readonly workers: number,
  ) {
    child.once('exit', () => {
      this.exited = true;
    });
    child.stderr?.on('data', (c: Buffer) => {
      this.stderr += c.toString();
    });
  }

  /** Writes the config (and runtime-state.json) into a fresh directory and starts nginx on it. */
  static async start(options: LuaNginxOptions): Promise<LuaNginx> {
    const dir = mkdtempSync(join(tmpdir(), 'sy-nginx-lua-'));
    // The workers run as an unprivileged user and create their temp files in here.
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'nginx.conf'), luaNginxConfig(dir, options));
    if (options.stateFile !== undefined)
      writeFileSync(join(dir, 'runtime-state.json'), JSON.stringify(options.stateFile));
    const child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', `${dir}/`, '-g', 'daemon off;'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const nginx = new LuaNginx(dir, child, options.workers ?? 2);
    await nginx.waitForWorkers(new Set()).catch(async (err: unknown) => {
      await nginx.stop();
      throw new Error(`nginx did not start: ${nginx.errorLog().slice(-3000)}`, { cause: err });
    });
    return nginx;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('nginx has no pid');
    return this.child.pid;
  }

  /** The PIDs of the current workers (not the privileged agent, not old workers shutting down). */
  workerPids(): number[] {
    return children(this.pid)
      .filter((p) => p.title === 'nginx: worker process')
      .map((p) => p.pid)
      .sort((a, b) => a - b);
  }

  /** The privileged agent's PID, or undefined while there is none. */
  agentPid(): number | undefined {
    return children(this.pid).find((p) => p.title === 'nginx: privileged agent process')?.pid;
  }

  /** What nginx wrote to stderr, then its error log. */
  errorLog(): string {
    try {
      return this.stderr + readFileSync(join(this.dir, 'error.log'), 'utf8');
    } catch {
      return this.stderr;
    }
  }

  writeStateFile(push: unknown): void {
    writeFileSync(join(this.dir, 'runtime-state.json'), JSON.stringify(push));
  }

  writeConfig(options: LuaNginxOptions): void {
    writeFileSync(join(this.dir, 'nginx.conf'), luaNginxConfig(this.dir, options));
  }

  /** `nginx -s reload` by PID (HUP to the master); resolves once all workers are new ones. */
  async reload(): Promise<void> {
    const before = new Set(this.workerPids());
    process.kill(this.pid, 'SIGHUP');
    await this.waitForWorkers(before).catch((err: unknown) => {
      throw new Error(`nginx did not reload: ${this.errorLog().slice(-3000)}`, { cause: err });
    });
  }

  private async waitForWorkers(old: ReadonlySet<number>): Promise<void> {
    await poll(
      () => {
        if (this.exited) throw new Error('nginx exited');
        const pids = this.workerPids();
        return pids.length === this.workers && pids.every((p) => !old.has(p)) ? true : undefined;
      },
      { timeout: 20_000, interval: 20 },
    );
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!this.exited && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }

  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A client of the runtime channel as the control plane calls it: HTTPS with a client certificate. */
export interface ChannelClientTls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface ChannelAnswer {
  readonly status: number;
  /** The reply's JSON as the node sent it (null when it was not JSON). */
  readonly body: any;
  readonly text: string;
}

export function channelRequest(
  target: { readonly host: string; readonly port: number },
  tls: ChannelClientTls,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<ChannelAnswer> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: target.host,
        port: target.port,
        method,
        path,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        agent: false,
        timeout: timeoutMs,
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = null;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = null;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
