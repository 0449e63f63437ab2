/**
 * `npm run bench:runtime`: bulk throughput of the Runtime API client against a real HAProxy 2.6
 * on loopback, reached the way the control plane reaches a node: through the mutual-TLS `listen`
 * section in front of the local admin socket, with certificates from Switchyard's CA (openssl).
 * One backend of 100 servers; 10,000 `set server weight` commands as one pipelined batch over
 * mTLS and, for comparison, over the unix socket itself (median of RUNS after a warm-up), and a
 * baseline of 1,000 commands with a new mTLS connection each, in the same run. A plain TCP client
 * is checked to get no reply. Prints ONE JSON line. Target: at least 50,000 commands/s over mTLS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setServerWeight, showServersState } from '../src/fleet/runtime-api/commands/server-commands.js';
import { showInfo } from '../src/fleet/runtime-api/commands/stat-commands.js';
import { OneShotRuntimeClient } from '../src/fleet/runtime-api/one-shot-runtime-client.js';
import { parseServersState } from '../src/fleet/replies/show-servers-state.js';
import type { RuntimeCommand } from '../src/fleet/runtime-api/commands/runtime-command.js';
import { RuntimeClient } from '../src/fleet/runtime-api/runtime-client.js';
import type { RuntimeExecutor } from '../src/fleet/runtime-api/runtime-executor.js';
import { RuntimeClientTls } from '../src/fleet/runtime-api/connection/runtime-client-tls.js';
import { CONTROL_PLANE_SUBJECT, nodeSubject } from '../src/domain/runtime-tls.js';
import { createCa, issue } from '../src/pki/openssl-ca.js';
import { freePort, tcpExchange } from '../test/integration/haproxy-render-support.js';

const HOST = '127.0.0.1';
const SERVERS = 100;
const BULK = 10_000;
const BASELINE = 1_000;
const RUNS = 5;

/** 10,000 weight changes spread over the servers; `round` shifts the values so each run changes something. */
function weights(count: number, round: number): RuntimeCommand[] {
  return Array.from({ length: count }, (_, i) =>
    setServerWeight('be_bulk', `s${(i % SERVERS) + 1}`, (i + round) % 257),
  );
}

/** Commands per second for one execute() of the whole batch; fails loudly on any non-ok result. */
async function timeBatch(executor: RuntimeExecutor, commands: RuntimeCommand[]): Promise<number> {
  const started = performance.now();
  const results = await executor.execute(commands);
  const ms = performance.now() - started;
  const failed = results.filter((r) => r.status !== 'ok');
  if (failed.length > 0) throw new Error(`${failed.length} commands failed, first: ${JSON.stringify(failed[0])}`);
  return Math.round((commands.length / ms) * 1000);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function pipelined(executor: RuntimeClient): Promise<{ median: number; runs: number[] }> {
  await timeBatch(executor, weights(BULK, 0)); // warm-up: connection, JIT
  const runs: number[] = [];
  for (let r = 1; r <= RUNS; r++) runs.push(await timeBatch(executor, weights(BULK, r)));
  return { median: median(runs), runs };
}

/** Reads back the servers' weights to prove the last batch really landed. */
async function verify(executor: RuntimeExecutor, round: number): Promise<boolean> {
  const [state] = await executor.execute([showServersState('be_bulk')]);
  if (state?.status !== 'ok') return false;
  const rows = parseServersState(state.output);
  // The last command for server k (1-based) is index BULK - SERVERS + k - 1.
  return (
    rows.length === SERVERS && rows.every((row) => row.srv_uweight === (BULK - SERVERS + row.srv_id - 1 + round) % 257)
  );
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-bench-runtime-'));
  const port = await freePort(HOST);
  const sock = join(dir, 'admin.sock');
  const ca = await createCa('bench Runtime API CA', 1);
  const node = await issue(ca, nodeSubject({ name: 'bench', runtimeAddress: { host: HOST }, masterAddress: null }), 1);
  const client = await issue(ca, CONTROL_PLANE_SUBJECT, 1);
  await writeFile(join(dir, 'node.pem'), node.certificatePem + node.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'ca.pem'), ca.certificatePem);
  const tlsSource = new RuntimeClientTls();
  tlsSource.update({
    certificatePem: client.certificatePem,
    keyPem: client.keyPem,
    caBundlePem: ca.certificatePem,
    serial: 'bench',
  });
  const servers = Array.from({ length: SERVERS }, (_, i) => `  server s${i + 1} ${HOST}:${20_000 + i} weight 10`);
  // The global and listen lines as templates/haproxy renders them for a node with a Runtime API.
  await writeFile(
    join(dir, 'haproxy.cfg'),
    [
      'global',
      `  stats socket ${sock} level admin mode 600 expose-fd listeners`,
      '  stats timeout 2m',
      '  maxconn 1000',
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 5s',
      '  timeout server 5s',
      'listen sy_runtime_api',
      '  mode tcp',
      '  maxconn 16',
      `  bind ${HOST}:${port} ssl crt ${join(dir, 'node.pem')} ca-file ${join(dir, 'ca.pem')} verify required`,
      '  timeout client 2m',
      '  timeout server 2m',
      `  server admin unix@${sock}`,
      'backend be_bulk',
      '  balance roundrobin',
      ...servers,
      '',
    ].join('\n'),
  );
  let haproxy: ChildProcess | null = null;
  const tcp = new RuntimeClient({ host: HOST, port, tls: tlsSource }, { batchTimeoutMs: 60_000 });
  const unix = new RuntimeClient({ path: sock }, { batchTimeoutMs: 60_000 });
  try {
    haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
    for (let i = 0; i < 50 && (await tcp.execute([showInfo()]))[0]?.status !== 'ok'; i++)
      await new Promise((r) => setTimeout(r, 100));

    const overTcp = await pipelined(tcp);
    const tcpVerified = await verify(tcp, RUNS);
    const overUnix = await pipelined(unix);
    const unixVerified = await verify(unix, RUNS);
    const baseline = await timeBatch(
      new OneShotRuntimeClient({ host: HOST, port, tls: tlsSource }, { target: 'worker' }),
      weights(BASELINE, 0),
    );
    const plain = await tcpExchange({ host: HOST, port }, 'show info\n', 'Name:', 2000);

    console.log(
      JSON.stringify({
        bench: 'runtime-bulk',
        haproxy: '2.6',
        servers: SERVERS,
        bulk_commands: BULK,
        runs: RUNS,
        mtls_pipelined_cmds_per_s: overTcp.median,
        unix_pipelined_cmds_per_s: overUnix.median,
        mtls_connection_per_command_cmds_per_s: baseline,
        baseline_commands: BASELINE,
        speedup_mtls_vs_connection_per_command: Math.round((overTcp.median / baseline) * 10) / 10,
        mtls_runs: overTcp.runs,
        unix_runs: overUnix.runs,
        plain_tcp_refused: plain.received === '' && plain.closedByPeer,
        verified: tcpVerified && unixVerified,
        target_cmds_per_s: 50_000,
        target_met: overTcp.median >= 50_000 && overUnix.median >= 50_000,
      }),
    );
  } finally {
    await tcp.close();
    await unix.close();
    if (haproxy?.pid !== undefined && haproxy.exitCode === null && haproxy.signalCode === null) haproxy.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
