import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  completePush,
  type NginxCaps,
  type NginxHealthCheck,
  type NginxPeer,
  type NginxStats,
  type NginxUpstream,
} from '../../src/domain/nginx-runtime.js';
import { poll } from '../support/poll.js';
import { freePort, listen } from './haproxy-render-support.js';

/**
 * Real nginx with the Lua module (Debian's ndk + http-lua, resty.core) running the switchyard
 * health, caps and stats modules from templates/, shaped like the NGINX node config the renderer
 * writes: the module under `<dir>/lua/`, the dictionaries, init_worker/log at the http level, one
 * `upstream` with balancer_by_lua per tenant upstream, one server per VIP with `$sy_tenant`,
 * `$sy_vip` and caps.access(), and `$sy_upstream` per location (on Debian's nginx 1.22,
 * `$proxy_host` is not set yet in balancer_by_lua). The whole module runs, switchyard.state and
 * the balancer included; the runtime channel is replaced by a plain loopback control server that
 * applies complete pushes to the state and answers stats.report() as JSON. Only the processes started here are stopped, by PID.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MODULE_DIR = join(ROOT, 'templates/nginx/lua/switchyard');

export interface VipServer {
  readonly tenant: string;
  readonly vip: string;
  readonly upstream: string;
}

export interface LuaNginxOptions {
  readonly workers: number;
  readonly servers: readonly VipServer[];
  /** Dictionary sizes, e.g. `{ sy_stats: '12k' }`; the rest 1m. */
  readonly dicts?: Readonly<Record<string, string>>;
}

export interface TestState {
  readonly upstreams: Readonly<Record<string, NginxUpstream>>;
  readonly caps: Readonly<Record<string, NginxCaps>>;
}

const DICTS = ['sy_state', 'sy_health', 'sy_stats', 'sy_live', 'sy_locks'];

function renderConfig(dir: string, options: LuaNginxOptions, control: number, ports: readonly number[]): string {
  const dicts = DICTS.map((name) => `  lua_shared_dict ${name} ${options.dicts?.[name] ?? '1m'};`).join('\n');
  const upstreams = [...new Set(options.servers.map((s) => s.upstream))]
    .map(
      (name) => `  upstream ${name} {
    server 0.0.0.1;
    balancer_by_lua_block { require("switchyard.balancer").balance() }
    keepalive 32;
  }`,
    )
    .join('\n');
  const servers = options.servers
    .map(
      (s, i) => `  server { # vip ${s.vip}
    listen 127.0.0.1:${ports[i]};
    set $sy_tenant ${s.tenant};
    set $sy_vip ${s.vip};
    access_by_lua_block { require("switchyard.caps").access() }
    header_filter_by_lua_block { require("switchyard.balancer").header_filter() }
    location / {
      set $sy_upstream ${s.upstream};
      proxy_pass http://${s.upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`,
    )
    .join('\n');
  return `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes ${options.workers};
worker_shutdown_timeout 10s;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  lua_package_path "${dir}/lua/?.lua;;";
  lua_socket_log_errors off;
  lua_check_client_abort on; # as http-settings.hbs: a waiting request ends when its client leaves
${dicts}
  init_by_lua_block { require("switchyard.init").init({}) }
  init_worker_by_lua_block { require("switchyard.init").init_worker() }
  body_filter_by_lua_block { require("switchyard.balancer").body_filter() }
  log_by_lua_block { require("switchyard.stats").log() }
${upstreams}
${servers}
  server { # test control, in place of the runtime channel
    listen 127.0.0.1:${control};
    set $sy_tenant ""; # no tenant: stats.log() skips these requests (and nginx warns of no uninitialized variable)
    client_body_buffer_size 4m;
    client_max_body_size 4m;
    location = /state {
      content_by_lua_block {
        ngx.req.read_body()
        local reply, bad = require("switchyard.state").apply(require("cjson.safe").decode(ngx.req.get_body_data()), ngx.sleep)
        if reply == nil then ngx.status = 400 end
        ngx.say(reply and "ok" or require("cjson.safe").encode(bad))
      }
    }
    location = /stats {
      content_by_lua_block { ngx.say(require("cjson.safe").encode(require("switchyard.stats").report())) }
    }
    location = /checker {
      content_by_lua_block { ngx.say(require("switchyard.health").checker() or "") }
    }
  }
}
`;
}

function copyLua(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const file of readdirSync(from)) if (file.endsWith('.lua')) copyFileSync(join(from, file), join(to, file));
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export class LuaNginx {
  /** The revision of the last state set: each setState is a complete push at the next one. */
  private revision = 0;

  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
    readonly control: number,
    /** Listening port per `<tenant>/<vip>`. */
    readonly ports: Readonly<Record<string, number>>,
  ) {}

  static async start(options: LuaNginxOptions): Promise<LuaNginx> {
    const dir = mkdtempSync(join(tmpdir(), 'sy-lua-observe-'));
    chmodSync(dir, 0o755); // the workers run as nobody and read the modules from here
    copyLua(MODULE_DIR, join(dir, 'lua/switchyard'));
    mkdirSync(join(dir, 'tmp'));
    const control = await freePort('127.0.0.1');
    const list: number[] = [];
    for (const _ of options.servers) list.push(await freePort('127.0.0.1'));
    writeFileSync(join(dir, 'nginx.conf'), renderConfig(dir, options, control, list));
    execFileSync('nginx', ['-t', '-q', '-p', `${dir}/`, '-c', join(dir, 'nginx.conf')]);
    const child = spawn('nginx', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
      stdio: 'ignore',
    });
    const ports = Object.fromEntries(options.servers.map((s, i) => [`${s.tenant}/${s.vip}`, list[i]!]));
    const node = new LuaNginx(dir, child, control, ports);
    await poll(
      async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited: ${node.errorLog().slice(-2000)}`);
        for (const port of [control, ...list]) if (!(await connects(port))) return undefined;
        return true;
      },
      { timeout: 10_000, interval: 50 },
    );
    return node;
  }

  get pid(): number {
    return this.child.pid!;
  }

  port(vip: string): number {
    const port = this.ports[vip];
    if (port === undefined) throw new Error(`no VIP ${vip}`);
    return port;
  }

  errorLog(): string {
    try {
      return readFileSync(join(this.dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** error.log lines at error level or worse (a Lua runtime error, a failed timer). */
  errors(): string[] {
    return this.errorLog()
      .split('\n')
      .filter((line) => /\[(error|crit|alert|emerg)\]/.test(line));
  }

  /** The master's worker processes now (an old generation's exiting workers included). */
  workers(): number[] {
    let out = '';
    try {
      out = execFileSync('ps', ['--ppid', String(this.pid), '-o', 'pid='], { encoding: 'utf8' });
    } catch {
      return []; // ps exits 1 when there is none
    }
    return out
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  }

  /** Replaces the whole runtime state, as a complete push at the next revision (the real switchyard.state applies it). */
  async setState(state: TestState): Promise<void> {
    this.revision += 1;
    const push = completePush({ revision: this.revision, upstreams: state.upstreams, caps: state.caps });
    const res = await this.call('POST', '/state', JSON.stringify(push));
    if (res.status !== 200) throw new Error(`state refused: ${res.status} ${res.body}`);
  }

  async stats(): Promise<NginxStats & Required<Pick<NginxStats, 'overflow'>>> {
    const res = await this.call('GET', '/stats');
    if (res.status !== 200) throw new Error(`stats: ${res.status} ${res.body}`);
    return JSON.parse(res.body);
  }

  /** The pid of the worker holding the health checker's lease, or null. */
  async checker(): Promise<number | null> {
    const res = await this.call('GET', '/checker');
    const pid = Number(res.body.trim());
    return pid > 0 ? pid : null;
  }

  /** `nginx -s reload` (SIGHUP to our master); resolves when only the new generation's workers are left. */
  async reload(expectedWorkers: number): Promise<number[]> {
    const before = new Set(this.workers());
    process.kill(this.pid, 'SIGHUP');
    return poll(
      () => {
        const now = this.workers();
        return now.length === expectedWorkers && now.every((pid) => !before.has(pid)) ? now : undefined;
      },
      { timeout: 15_000, interval: 50 },
    );
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private call(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.control, method, path, agent: false, timeout: 5000 },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** A backend on loopback: `handle` answers every request; `close()` ends its connections too. */
export interface Backend {
  readonly port: number;
  readonly server: http.Server;
  close(): Promise<void>;
}

export async function startBackend(handle: http.RequestListener): Promise<Backend> {
  const server = http.createServer(handle);
  server.keepAliveTimeout = 2000;
  const port = await listen(server, '127.0.0.1');
  return {
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function peer(name: string, port: number, extra: Partial<NginxPeer> = {}): NginxPeer {
  return { name, address: '127.0.0.1', port, weight: 1, admin: 'ready', backup: false, cookie: null, ...extra };
}

export function httpCheck(extra: Partial<NginxHealthCheck> = {}): NginxHealthCheck {
  return {
    type: 'http',
    path: '/healthz',
    host: null,
    expectedStatus: [[200, 399]],
    port: null,
    // Generous for loopback: the backends run in the busy test process, which may answer late.
    intervalMs: 300,
    timeoutMs: 300,
    rise: 2,
    fall: 2,
    ...extra,
  };
}

export function upstream(
  tenant: string,
  pool: string,
  peers: readonly NginxPeer[],
  healthCheck: NginxHealthCheck | null = null,
): NginxUpstream {
  return { tenant, pool, algorithm: 'roundrobin', cookie: null, healthCheck, peers };
}

export interface Reply {
  readonly status: number;
  readonly body: string;
}

/** One GET on its own connection. */
export function get(port: number, path = '/', timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' }, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
