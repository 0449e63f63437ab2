import type http from 'node:http';
import { expect } from 'vitest';
import type { HeldState, NginxPeer, NginxUpstream } from '../../src/domain/nginx-runtime.js';
import {
  type ChannelAnswer,
  type ChannelClientTls,
  channelRequest,
  LuaNginx,
  type LuaNginxOptions,
  tenantServer,
  upstreamBlock,
} from '../support/nginx-lua-harness.js';
import { type Issued, TestPki } from '../support/openssl.js';
import { freePort, type HttpAnswer, request } from './haproxy-render-support.js';

/** Shared by the Lua balancer's integration tests: a node on loopback, its channel, its traffic. */

export const HOST = '127.0.0.1';

/** The runtime channel's certificates: the node's, the control plane's, and an impostor's from another CA. */
export interface ChannelPki {
  readonly pki: TestPki;
  readonly ca: Issued;
  readonly node: Issued;
  readonly controlPlane: ChannelClientTls;
  readonly stranger: ChannelClientTls;
}

export async function channelPki(): Promise<ChannelPki> {
  const pki = await TestPki.create();
  const ca = await pki.root('Switchyard Control Plane CA');
  const node = await pki.issue('edge-1', ca, { sans: [`IP:${HOST}`] });
  const client = await pki.issue('switchyard-control-plane', ca);
  const otherCa = await pki.root('Some Other CA');
  const impostor = await pki.issue('switchyard-control-plane', otherCa);
  return {
    pki,
    ca,
    node,
    controlPlane: { ca: ca.cert, cert: client.cert, key: client.key },
    stranger: { ca: ca.cert, cert: impostor.cert, key: impostor.key },
  };
}

export function peerOf(name: string, port: number, overrides: Partial<NginxPeer> = {}): NginxPeer {
  return { name, address: HOST, port, weight: 1, admin: 'ready', backup: false, cookie: `ck-${name}`, ...overrides };
}

export function upstreamOf(
  tenant: string,
  pool: string,
  algorithm: NginxUpstream['algorithm'],
  peers: NginxPeer[],
  cookie: string | null = null,
): NginxUpstream {
  return { tenant, pool, algorithm, cookie, healthCheck: null, peers };
}

/** Which member answered, by the header every test member sets. */
export function memberOf(answer: { status: number; headers: http.IncomingHttpHeaders }): string {
  expect(answer.status).toBe(200);
  return String(answer.headers['x-member']);
}

/**
 * Expects exactly these members, each within `slack` requests of its share. Round robin is exact
 * per worker; two workers split the requests unevenly, each starting where its cycle stood.
 */
export function expectShares(counts: Record<string, number>, expected: Record<string, number>, slack = 2): void {
  expect(Object.keys(counts).sort()).toEqual(Object.keys(expected).sort());
  for (const [member, n] of Object.entries(expected)) {
    expect(Math.abs(counts[member]! - n), `${member}: ${JSON.stringify(counts)}`).toBeLessThanOrEqual(slack);
  }
}

export interface LuaNodeOptions extends Omit<LuaNginxOptions, 'http' | 'channel'> {
  /** Location path → upstream name: one upstream block each and one tenant server for all. */
  readonly locations: Readonly<Record<string, string>>;
  readonly extraHttp?: string;
}

/** An nginx node with the Lua module, one tenant server on `vip`, and the runtime channel. */
export class LuaNode {
  private constructor(
    readonly nginx: LuaNginx,
    readonly vip: { readonly host: string; readonly port: number },
    readonly channel: { readonly host: string; readonly port: number },
    private readonly tls: ChannelClientTls,
    private readonly options: LuaNginxOptions,
  ) {}

  static async start(certs: ChannelPki, options: LuaNodeOptions): Promise<LuaNode> {
    const vip = { host: HOST, port: await freePort(HOST) };
    const channel = { host: HOST, port: await freePort(HOST) };
    const upstreams = [...new Set(Object.values(options.locations))];
    const nginxOptions: LuaNginxOptions = {
      ...options,
      http: [
        ...upstreams.map((name) => upstreamBlock(name)),
        tenantServer(`${vip.host}:${vip.port}`, options.locations),
        options.extraHttp ?? '',
      ].join('\n'),
      channel: {
        ...channel,
        tls: { certPath: certs.node.certPath, keyPath: certs.node.keyPath, clientCaPath: certs.ca.certPath },
      },
    };
    const nginx = await LuaNginx.start(nginxOptions);
    return new LuaNode(nginx, vip, channel, certs.controlPlane, nginxOptions);
  }

  /** Rewrites nginx.conf with other dictionary sizes (the next reload reads it). */
  resizeDicts(dicts: Readonly<Record<string, string>>): void {
    this.nginx.writeConfig({ ...this.options, dicts: { ...this.options.dicts, ...dicts } });
  }

  post(body: unknown, tls: ChannelClientTls = this.tls): Promise<ChannelAnswer> {
    return channelRequest(this.channel, tls, 'POST', '/switchyard/v1/state', body);
  }

  async held(): Promise<HeldState> {
    const answer = await channelRequest(this.channel, this.tls, 'GET', '/switchyard/v1/state');
    expect(answer.status, answer.text).toBe(200);
    return answer.body;
  }

  /** One request to the tenant server; `timeoutMs` (3 s by default) bounds its whole exchange. */
  get(
    path: string,
    options: { headers?: Record<string, string>; localAddress?: string; timeoutMs?: number } = {},
  ): Promise<HttpAnswer> {
    const { timeoutMs, ...rest } = options;
    return request({ ...this.vip, path, ...rest }, timeoutMs);
  }

  /** Sends `n` requests, each on its own connection, and counts the members that answered. */
  async tally(path: string, n: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const who = memberOf(await this.get(path));
      counts[who] = (counts[who] ?? 0) + 1;
    }
    return counts;
  }
}
