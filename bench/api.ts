/**
 * bench:api — throughput and latency of GET /v1/tenants/{t} and POST of a member, side by side
 * with a bare express route returning the same JSON without a database, in one run.
 * Prints one JSON line. Target: our GET ≥ 50% of the bare route's requests/s.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import express from 'express';
import { startScratchControlPlane } from './scratch-control-plane.js';
import { round, wrk } from './support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

const scratch = await startScratchControlPlane('api', { LOG_LEVEL: 'warn' });
const { cp, token } = scratch;
const bare = express();
let bareServer: Server | undefined;
try {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const post = (path: string, body: unknown) =>
    fetch(cp.url + path, { method: 'POST', headers, body: JSON.stringify(body) });
  await post('/v1/tenants', { id: 'bench', reservation: { vcpu: 2, memoryMb: 4096 }, labels: { env: 'bench' } });
  await post('/v1/tenants/bench/pools', { name: 'web' });
  const tenantJson = (await (await fetch(`${cp.url}/v1/tenants/bench`, { headers })).json()) as { revision: number };

  bare.get('/v1/tenants/:tenant', (_req, res) => {
    res.setHeader('ETag', `"${tenantJson.revision}"`);
    res.json(tenantJson);
  });
  bareServer = await new Promise<Server>((ok) => {
    const s = bare.listen(0, '127.0.0.1', () => ok(s));
  });
  const bareUrl = `http://127.0.0.1:${(bareServer.address() as { port: number }).port}`;

  const dir = mkdtempSync(join(tmpdir(), 'sy-bench-'));
  const getScript = join(dir, 'get.lua');
  writeFileSync(getScript, `wrk.headers["Authorization"] = "Bearer ${token}"\n`);
  const postScript = join(dir, 'post.lua');
  // Every request creates a new member: unique name and endpoint from a per-thread counter.
  writeFileSync(
    postScript,
    `
local n = 0
local t = math.random(1, 200)
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer ${token}"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local body = string.format('{"name":"m-%d-%d","address":"10.%d.%d.%d","port":8080}', t, n, t, math.floor(n / 250) % 250, n % 250 + 1)
  return wrk.format(nil, nil, nil, body)
end
`,
  );

  process.stderr.write(`bench:api: ${SECONDS}s per run, ${CONNECTIONS} connections (bare GET, our GET, our POST)\n`);
  // Warm up both servers (JIT, connection pools) before measuring.
  await wrk(`${bareUrl}/v1/tenants/bench`, { seconds: 1, connections: 8 });
  await wrk(`${cp.url}/v1/tenants/bench`, { seconds: 1, connections: 8, script: getScript });
  const bareGet = await wrk(`${bareUrl}/v1/tenants/bench`, { seconds: SECONDS, connections: CONNECTIONS });
  const ourGet = await wrk(`${cp.url}/v1/tenants/bench`, {
    seconds: SECONDS,
    connections: CONNECTIONS,
    script: getScript,
  });
  const ourPost = await wrk(`${cp.url}/v1/tenants/bench/pools/web/members`, {
    seconds: SECONDS,
    connections: CONNECTIONS,
    script: postScript,
  });

  const ratio = ourGet.requestsPerSec / bareGet.requestsPerSec;
  const line = {
    bench: 'api',
    seconds: SECONDS,
    connections: CONNECTIONS,
    bareGet: { rps: round(bareGet.requestsPerSec), p50Ms: bareGet.p50Ms, p99Ms: bareGet.p99Ms, non2xx: bareGet.non2xx },
    get: { rps: round(ourGet.requestsPerSec), p50Ms: ourGet.p50Ms, p99Ms: ourGet.p99Ms, non2xx: ourGet.non2xx },
    postMember: {
      rps: round(ourPost.requestsPerSec),
      p50Ms: ourPost.p50Ms,
      p99Ms: ourPost.p99Ms,
      non2xx: ourPost.non2xx,
    },
    getToBareRatio: round(ratio, 3),
    target: 'getToBareRatio >= 0.5',
    met: ratio >= 0.5 && ourGet.non2xx === 0 && ourPost.non2xx === 0,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
} finally {
  bareServer?.close();
  await scratch.stop();
}
