import { spawn } from 'node:child_process';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { completePush, type NginxPeer, versioned } from '../../src/domain/nginx-runtime.js';
import { listen } from './haproxy-render-support.js';
import { type ChannelPki, channelPki, HOST, LuaNode, peerOf, upstreamOf } from './nginx-lua-support.js';

/**
 * Issue 15's promise on NGINX, at the scale of one node: wrk keeps 50 keep-alive connections busy
 * through the Lua balancer while 100 member, weight and state changes arrive over the runtime
 * channel; not one request fails and nginx never reloads (same master, same workers).
 */

interface CountingMember {
  readonly port: number;
  readonly server: http.Server;
  count(): number;
}

let certs: ChannelPki;
let node: LuaNode;
const members = new Map<string, CountingMember>();

async function countingMember(name: string): Promise<CountingMember> {
  const seen = { count: 0 };
  const server = http.createServer((_req, res) => {
    seen.count++;
    res.writeHead(200, { 'x-member': name, 'content-type': 'text/plain' }).end(name);
  });
  // Longer than nginx keeps an idle upstream connection, so the member never closes one under it.
  server.keepAliveTimeout = 120_000;
  const port = await listen(server, HOST);
  return { port, server, count: () => seen.count };
}

function peer(name: string, overrides: Partial<NginxPeer> = {}): NginxPeer {
  return peerOf(name, members.get(name)!.port, overrides);
}

/** The i-th change: weights, membership, drain, maintenance and backup in turn; `a` always takes requests. */
function change(i: number) {
  const peers = [peer('a', { weight: 1 + (i % 5) }), peer('b', { admin: i % 4 === 1 ? 'drain' : 'ready' })];
  peers.push(peer('c', { admin: i % 4 === 2 ? 'maint' : 'ready', weight: i % 6 === 3 ? 0 : 2 }));
  if (i % 3 !== 0) peers.push(peer('d', { backup: i % 7 === 0 }));
  return upstreamOf('acme', 'web', i % 10 < 5 ? 'roundrobin' : 'leastconn', peers);
}

interface WrkResult {
  readonly requests: number;
  readonly non2xx: number;
  readonly socketErrors: number;
  readonly output: string;
}

function runWrk(url: string, seconds: number): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const wrk = spawn('wrk', ['-t1', '-c50', `-d${seconds}s`, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    wrk.stdout.on('data', (c: Buffer) => (output += c.toString()));
    wrk.stderr.on('data', (c: Buffer) => (output += c.toString()));
    wrk.on('error', reject);
    wrk.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${output}`));
      const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? Number.NaN);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
      const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
      const socketErrors = errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
      resolve({ requests, non2xx, socketErrors, output });
    });
  });
}

beforeAll(async () => {
  certs = await channelPki();
  for (const name of ['a', 'b', 'c', 'd']) members.set(name, await countingMember(name));
  node = await LuaNode.start(certs, {
    locations: { '/': 't_acme_web' },
    stateFile: completePush({ revision: 1, upstreams: { t_acme_web: change(0) }, caps: {} }),
  });
});

afterAll(async () => {
  await node?.nginx.remove();
  for (const m of members.values()) {
    m.server.closeAllConnections();
    m.server.close();
  }
  await certs?.pki.dispose();
});

describe('the Lua balancer under load', () => {
  it('wrk -c50 through 100 runtime changes: no failed request, no reload', { timeout: 60_000 }, async () => {
    const master = node.nginx.pid;
    const workers = node.nginx.workerPids();
    let wrkRunning = true;
    const wrk = runWrk(`http://${HOST}:${node.vip.port}/`, 12).finally(() => {
      wrkRunning = false;
    });
    // The changes start once traffic flows.
    await vi.waitFor(
      () => {
        if ([...members.values()].reduce((sum, m) => sum + m.count(), 0) < 100) throw new Error('no traffic yet');
      },
      { timeout: 5000, interval: 20 },
    );
    let underLoad = 0;
    for (let i = 1; i <= 100; i++) {
      const answer = await node.post({
        complete: false,
        upstreams: { t_acme_web: versioned(change(i), i + 1) },
        caps: {},
      });
      expect(answer.body, `change ${i}`).toEqual({ applied: 1, stale: [], failed: [] });
      if (wrkRunning) underLoad++;
    }
    const result = await wrk;
    // About 5 s for the 100 here under a load average of 15; most must land while wrk runs.
    expect(underLoad, 'changes applied while wrk ran').toBeGreaterThanOrEqual(50);
    expect(result.requests, result.output).toBeGreaterThan(1000);
    expect(result.socketErrors, result.output).toBe(0);
    expect(result.non2xx, result.output).toBe(0);
    expect(node.nginx.pid).toBe(master);
    expect(node.nginx.workerPids()).toEqual(workers);
  });
});
