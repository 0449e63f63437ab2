import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { poll } from '../support/poll.js';

/** Small loopback servers and clients for the HAProxy integration test. Everything is bounded in time. */

export interface Closable {
  close(): Promise<void>;
}

export function listen(server: net.Server, host: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function closer(server: net.Server | http.Server): Closable {
  return {
    close: () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port free on `host` right now (bound then released), for listeners HAProxy opens itself. */
export async function freePort(host: string): Promise<number> {
  // The kernel may hand the port it just freed to the next probe: two calls in a row (two VIPs on
  // one address) then got the same port and the render refused the listener conflict. A port is
  // handed out once per process.
  for (let tries = 0; tries < 100; tries++) {
    const probe = net.createServer();
    const port = await listen(probe, host);
    await closer(probe).close();
    const key = `${host}:${port}`;
    if (handedOut.has(key)) continue;
    handedOut.add(key);
    return port;
  }
  throw new Error(`no port on ${host} that was not handed out already, after 100 tries`);
}

/** Every `host:port` freePort has answered in this process. */
const handedOut = new Set<string>();

/** TLS for a member: its certificate, and optionally the CA whose client certificates it requires (mTLS). */
export interface MemberTls {
  readonly cert: string;
  readonly key: string;
  readonly clientCa?: string;
}

/**
 * An HTTP member (or HTTPS, given `secure`): `/healthz` answers 200; anything else names the member
 * and echoes forwarding headers, and over TLS the SNI it was asked for and the client
 * certificate's subject CN (null without one).
 */
export async function httpMember(
  name: string,
  host: string,
  port = 0,
  secure?: MemberTls,
): Promise<Closable & { port: number }> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === '/healthz') return void res.writeHead(200).end('ok');
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-member': name,
    });
    const socket = req.socket as tls.TLSSocket;
    const over =
      secure === undefined
        ? {}
        : { servername: socket.servername || null, client: socket.getPeerCertificate().subject?.CN ?? null };
    res.end(
      JSON.stringify({
        member: name,
        xff: req.headers['x-forwarded-for'] ?? null,
        proto: req.headers['x-forwarded-proto'] ?? null,
        ...over,
      }),
    );
  };
  const server =
    secure === undefined
      ? http.createServer(handler)
      : https.createServer(
          {
            cert: secure.cert,
            key: secure.key,
            ...(secure.clientCa !== undefined && { ca: secure.clientCa, requestCert: true, rejectUnauthorized: true }),
          },
          handler,
        );
  server.keepAliveTimeout = 1000;
  const bound = await listen(server, host, port);
  return { port: bound, ...closer(server) };
}

/** A TCP member: greets with its name, then echoes what it receives. */
export async function tcpMember(name: string, host: string): Promise<Closable & { port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write(`hello from ${name}\n`);
    socket.pipe(socket);
  });
  const port = await listen(server, host);
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return closer(server).close();
    },
  };
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly peerFingerprint?: string;
}

export interface RequestOptions {
  readonly host: string;
  readonly port: number;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly localAddress?: string;
  /** TLS: the CA to verify against and the SNI name to send. */
  readonly tls?: { readonly ca: string; readonly servername: string };
}

/** One request on a fresh connection, so every request is balanced on its own. */
export function request(options: RequestOptions, timeoutMs = 3000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const common = {
      host: options.host,
      port: options.port,
      path: options.path ?? '/',
      headers: { connection: 'close', ...options.headers },
      localAddress: options.localAddress,
      agent: false as const,
      timeout: timeoutMs,
    };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      const socket = res.socket as tls.TLSSocket;
      const peerFingerprint = options.tls ? socket.getPeerCertificate().fingerprint256 : undefined;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
          peerFingerprint,
        }),
      );
    };
    const req = options.tls
      ? https.request({ ...common, ca: options.tls.ca, servername: options.tls.servername }, onResponse)
      : http.request(common, onResponse);
    req.on('timeout', () => req.destroy(new Error(`request to ${options.host}:${options.port} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Connects, sends `payload`, and collects what comes back until `expect` is seen, the peer closes, or the time is up. */
export function tcpExchange(
  options: { host: string; port: number; localAddress?: string },
  payload: string,
  expect: string,
  timeoutMs = 3000,
): Promise<{ received: string; closedByPeer: boolean; error: string | null }> {
  return new Promise((resolve) => {
    let received = '';
    let error: string | null = null;
    let done = false;
    const socket = net.connect({ host: options.host, port: options.port, localAddress: options.localAddress });
    const finish = (closedByPeer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ received, closedByPeer, error });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk) => {
      received += chunk.toString();
      if (received.includes(expect)) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      finish(true);
    });
  });
}

/**
 * One Runtime API command, on the node's local admin socket (a unix path, as an operator on the
 * node would) or a plain TCP port on loopback; HAProxy closes the connection after answering.
 */
export function runtimeCommand(target: number | string, command: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onConnect = () => socket.write(`${command}\n`);
    const socket =
      typeof target === 'string'
        ? net.connect({ path: target }, onConnect)
        : net.connect({ host: '127.0.0.1', port: target }, onConnect);
    const timer = setTimeout(() => socket.destroy(new Error(`runtime command timed out: ${command}`)), timeoutMs);
    socket.on('data', (c) => (out += c.toString()));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('error', reject);
  });
}

/** `show stat` as rows keyed by column name. */
export async function showStat(target: number | string): Promise<Record<string, string>[]> {
  const text = await runtimeCommand(target, 'show stat');
  const [header, ...lines] = text.trim().split('\n');
  const columns = header!.replace(/^# /, '').split(',');
  return lines.map((line) => Object.fromEntries(line.split(',').map((v, i) => [columns[i]!, v])));
}

/**
 * Waits for `probe` to answer a value, for at most `timeoutMs`: undefined or a throw means not yet.
 * The value is what the caller goes on with (a node's status, a pid), which is why this adapter
 * stays rather than an expect.poll at each of its call sites; it is `poll`, not `vi.waitFor`,
 * because the benchmarks share this file and run outside vitest.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  everyMs = 100,
): Promise<T> {
  try {
    return await poll(probe, { timeout: timeoutMs, interval: everyMs });
  } catch (error) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${String(error)}`, { cause: error });
  }
}

/** Waits until a request to the VIP is answered 200 (a proxy just started, or a new config just applied). */
export async function untilVipAnswers(host: string, port: number, timeoutMs = 15_000): Promise<void> {
  await eventually(
    'the VIP answers 200',
    async () => ((await request({ host, port, path: '/' }).catch(() => null))?.status === 200 ? true : undefined),
    timeoutMs,
  );
}

export interface RunningHaproxy {
  readonly pid: number;
  /** Everything haproxy printed so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** `haproxy -W -db [args] -f cfg`: master-worker in the foreground, stopped by its own PID. */
export function startHaproxy(config: string, args: readonly string[] = []): RunningHaproxy {
  const child: ChildProcess = spawn('haproxy', ['-W', '-db', ...args, '-f', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c) => (output += c.toString()));
  child.stderr!.on('data', (c) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid === undefined) throw new Error('haproxy did not start');
  const pid = child.pid;
  return {
    pid,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, 'SIGTERM');
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000));
      if ((await Promise.race([exited, timeout])) === 'timeout') {
        process.kill(pid, 'SIGKILL');
        await exited;
      }
    },
  };
}
