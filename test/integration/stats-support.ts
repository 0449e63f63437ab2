import http from 'node:http';
import type { Caller } from '../support/app.js';
import { freePort, listen } from './haproxy-render-support.js';

/** The control plane as the stats tests run it: reconciler on, a poll every second, raw samples kept 10 min. */
export const STATS_ENV: Readonly<Record<string, string>> = Object.freeze({
  SWITCHYARD_RECONCILE: 'true',
  SWITCHYARD_RECONCILE_RETRY_MAX_MS: '1000',
  SWITCHYARD_STATS: 'true',
  SWITCHYARD_STATS_INTERVAL_S: '1',
  SWITCHYARD_STATS_NODE_TIMEOUT_MS: '800',
  SWITCHYARD_STATS_RAW_RETENTION_S: '600',
});

/** An HTTP member that answers at once, except `/hold`, which it answers only when released. */
export interface HoldingMember {
  readonly port: number;
  /** Requests to `/hold` waiting for their answer. */
  held(): number;
  /** Answers every held request. */
  release(): void;
  close(): Promise<void>;
}

export async function holdingMember(host: string): Promise<HoldingMember> {
  let held: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/hold') return void held.push(() => res.writeHead(200, { connection: 'close' }).end('held'));
    res.writeHead(200, { connection: 'close' }).end('ok');
  });
  const port = await listen(server, host);
  const release = () => {
    for (const answer of held) answer();
    held = [];
  };
  return {
    port,
    held: () => held.length,
    release,
    close: async () => {
      release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A tenant with one HTTP VIP on `host` (a free port) in front of one member, through admin writes
 * that must succeed; returns the VIP's port.
 */
export async function oneVipTenant(admin: Caller, tenant: string, host: string, memberPort: number): Promise<number> {
  const write = async (method: string, path: string, body: unknown) => {
    const res = await admin(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  };
  const vipPort = await freePort(host);
  await write('POST', '/v1/tenants', { id: tenant, reservation: { vcpu: 1, memoryMb: 512 } });
  await write('POST', `/v1/tenants/${tenant}/pools`, { name: 'web' });
  await write('PUT', `/v1/tenants/${tenant}/pools/web/members`, {
    members: [{ name: 'm1', address: host, port: memberPort }],
  });
  await write('POST', `/v1/tenants/${tenant}/vips`, {
    name: 'web',
    address: host,
    port: vipPort,
    protocol: 'http',
    defaultPool: 'web',
  });
  return vipPort;
}
