import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { parseAgentOptions } from '../src/cli/agent.js';
import { buildAgent } from '../src/cli/build-agent.js';
import { entryHash, type HeldState, type NginxUpstream } from '../src/domain/nginx-runtime.js';
import type { Agent } from '../src/fleet/agent/agent.js';
import { childProcesses } from '../src/fleet/agent/process-table.js';
import type { ControlPlane } from '../src/main.js';
import { freePort, httpMember, type Closable } from '../test/integration/haproxy-render-support.js';

/**
 * bench:propagation's NGINX line: one NGINX node run as in production (its agent with the CLI's
 * defaults, nginx on the rendered config with the Switchyard Lua module), a tenant of its own.
 *  - runtime path: member weight changes through the API, each timed from the write returning to
 *    the node's runtime channel holding the new entry (its hash, read over mTLS on one keep-alive
 *    connection: sy_state is what the balancer reads on the next request);
 *  - reload path: structural changes (a new VIP each) timed from the write returning to the new
 *    listener answering 200: build, long-poll wake-up, fetch, `nginx -t`, swap, reload, new workers;
 *  - reload path by hand, shaped as the HAProxy line's: the agent stopped, each new VIP made live
 *    by build (render + `nginx -t`) → write the files → SIGHUP to the master, to the same listener answering.
 * The runtime path must not reload: the master's workers are compared before and after.
 */

type Api = (method: string, path: string, body?: unknown) => Promise<any>;

export interface NginxPropagation {
  readonly runtime: { changes: number; samples: number[]; reloads: number };
  readonly reload: { changes: number; samples: number[] };
  readonly reloadByHand: { changes: number; samples: number[] };
}

const VIP = '127.0.0.78';
const NODE = 'ngx-prop';
const UPSTREAM = 't_tn_web';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 1): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** One GET on a new connection: its status, or 0 when nothing answered. */
function status(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: VIP, port, path: '/', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

export async function measureNginxPropagation(
  api: Api,
  cp: ControlPlane,
  options: { changes: number; reloadChanges: number; log: (msg: string) => void },
): Promise<NginxPropagation> {
  const dir = await mkdtemp(join(tmpdir(), 'sy-ngx-prop-'));
  const configDir = join(dir, 'etc');
  const members: Closable[] = [];
  let agent: Agent | undefined;
  let nginx: ChildProcess | undefined;
  let channel: https.Agent | undefined;
  try {
    const [a, b] = [await httpMember('a', '127.0.0.1'), await httpMember('b', '127.0.0.1')];
    members.push(a, b);
    const vipPort = await freePort(VIP);
    // A reservation whose request-rate cap is far above the reload path's polling (up to 500/s):
    // without one the tenant may send 1 request/s and the new listener answers 429 at first.
    await api('POST', '/v1/tenants', { id: 'tn', proxyKind: 'nginx', reservation: { vcpu: 2, memoryMb: 2048 } });
    await api('POST', '/v1/tenants/tn/pools', { name: 'web' });
    await api('PUT', '/v1/tenants/tn/pools/web/members', {
      members: [
        { name: 'm1', address: '127.0.0.1', port: a.port, weight: 10 },
        { name: 'm2', address: '127.0.0.1', port: b.port, weight: 10 },
      ],
    });
    /** Adds an HTTP VIP of tenant tn on VIP:port to pool web (a structural change: a reload). */
    const addVip = (name: string, port: number) =>
      api('POST', '/v1/tenants/tn/vips', { name, address: VIP, port, protocol: 'http', defaultPool: 'web' });
    await addVip('www', vipPort);
    const channelPort = await freePort('127.0.0.1');
    const node = await api('POST', '/v1/nodes', {
      name: NODE,
      kind: 'nginx',
      runtimeAddress: { host: '127.0.0.1', port: channelPort },
      capacity: { vcpu: 4, memoryMb: 4096 },
      configDir,
      socketDir: dir,
    });
    options.log('starting an NGINX node (agent, then nginx)');
    agent = buildAgent(
      parseAgentOptions(
        {
          controlPlane: cp.url,
          node: NODE,
          kind: 'nginx',
          configDir,
          masterSocket: join(dir, 'master.sock'),
          haproxyBin: 'haproxy',
          nginxBin: 'nginx',
          wait: '30',
          heartbeat: '10',
          reloadTimeout: '10',
          keepReleases: '3',
        },
        { SWITCHYARD_AGENT_TOKEN: node.agentToken },
      ),
      pino({ level: process.env.BENCH_AGENT_LOG_LEVEL ?? 'silent' }, pino.destination(2)),
    );
    void agent.run();
    const applied = async () => {
      const config = await api('GET', `/v1/nodes/${NODE}/config`);
      return (await api('GET', `/v1/nodes/${NODE}`)).status?.appliedHash === config.contentHash;
    };
    await waitFor('the agent to apply the first config', applied, 30_000, 50);
    nginx = spawn('nginx', ['-c', join(configDir, 'nginx.conf'), '-p', `${configDir}/`, '-g', 'daemon off;'], {
      stdio: 'ignore',
    });
    await waitFor('the VIP to answer', async () => (await status(vipPort)) === 200, 15_000, 20);

    const credentials = (await cp.services.pki.clientCredentials())!;
    channel = new https.Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: credentials.caBundlePem,
      cert: credentials.certificatePem,
      key: credentials.keyPem,
    });
    const heldHash = () =>
      new Promise<string | undefined>((resolve, reject) => {
        const req = https.get(
          { host: '127.0.0.1', port: channelPort, path: '/switchyard/v1/state', agent: channel, timeout: 2000 },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve((JSON.parse(text) as HeldState).upstreams[UPSTREAM]?.hash));
          },
        );
        req.on('timeout', () => req.destroy(new Error('channel read timed out')));
        req.on('error', reject);
      });
    // The entry as the control plane renders it: the pushed value differs from it in m1's weight only.
    const config = await api('GET', `/v1/nodes/${NODE}/config`);
    const line = (config.files['runtime-state.jsonl'] as string)
      .split('\n')
      .find((l) => l.startsWith(`{"upstream":${JSON.stringify(UPSTREAM)}`));
    const rendered = JSON.parse(line!) as { hash: string; value: NginxUpstream };
    if (entryHash(rendered.value) !== rendered.hash) throw new Error('the rendered entry hash is not entryHash(value)');
    const withWeight = (weight: number) =>
      entryHash({
        ...rendered.value,
        peers: rendered.value.peers.map((p) => (p.name === 'm1' ? { ...p, weight } : p)),
      });
    const setWeight = async (weight: number) => {
      await api('PATCH', '/v1/tenants/tn/pools/web/members/m1', { weight });
      const returned = performance.now();
      const want = withWeight(weight);
      await waitFor(`weight ${weight} held on the NGINX node`, async () => (await heldHash()) === want, 5000);
      return performance.now() - returned;
    };
    // Warm-up: the first push and the channel's TLS session.
    await setWeight(11);

    const master = nginx.pid!;
    const workers = async () =>
      (await childProcesses(master))
        .filter((p) => p.title === 'nginx: worker process')
        .map((p) => p.pid)
        .sort()
        .join();
    const workersBefore = await workers();
    options.log(`NGINX runtime path: ${options.changes} weight changes`);
    const runtime: number[] = [];
    for (let i = 0; i < options.changes; i++) runtime.push(await setWeight(20 + (i % 200)));
    const reloads = (await workers()) === workersBefore ? 0 : 1;

    options.log(`NGINX reload path: ${options.reloadChanges} new VIPs`);
    const reload: number[] = [];
    for (let i = 0; i < options.reloadChanges; i++) {
      const port = await freePort(VIP);
      await addVip(`r${i}`, port);
      const returned = performance.now();
      await waitFor(`VIP r${i} answering`, async () => (await status(port)) === 200, 15_000, 2);
      reload.push(performance.now() - returned);
      // The old workers finish and the agent reports before the next change.
      await waitFor('the agent to report the reload', applied, 15_000, 20);
    }

    options.log(`NGINX reload path by hand: ${options.reloadChanges} new VIPs`);
    await agent.stop();
    agent = undefined;
    const byHand: number[] = [];
    for (let i = 0; i < options.reloadChanges; i++) {
      const port = await freePort(VIP);
      await addVip(`h${i}`, port);
      const returned = performance.now();
      const built = await cp.services.configs.build(NODE);
      for (const [file, content] of Object.entries(built.files)) {
        await mkdir(dirname(join(configDir, file)), { recursive: true });
        await writeFile(join(configDir, file), content);
      }
      process.kill(master, 'SIGHUP');
      await waitFor(`VIP h${i} answering`, async () => (await status(port)) === 200, 15_000, 2);
      byHand.push(performance.now() - returned);
    }
    return {
      runtime: { changes: options.changes, samples: runtime, reloads },
      reload: { changes: options.reloadChanges, samples: reload },
      reloadByHand: { changes: options.reloadChanges, samples: byHand },
    };
  } finally {
    channel?.destroy();
    await agent?.stop();
    if (nginx?.pid !== undefined && nginx.exitCode === null) {
      const exited = new Promise((r) => nginx!.once('exit', r));
      process.kill(nginx.pid, 'SIGTERM');
      const timer = setTimeout(() => nginx?.pid !== undefined && process.kill(nginx.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await api('DELETE', `/v1/nodes/${NODE}`).catch(() => undefined);
    for (const m of members) await m.close();
    await rm(dir, { recursive: true, force: true });
  }
}
