import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatePush } from '../../../../src/domain/nginx-runtime.js';
import { NginxRuntimeClient } from '../../../../src/fleet/nginx-runtime/nginx-runtime-client.js';
import { NginxRuntimeError } from '../../../../src/fleet/nginx-runtime/nginx-runtime-error.js';
import { RuntimeClientTls } from '../../../../src/fleet/runtime-api/connection/runtime-client-tls.js';

/**
 * The runtime channel client's protocol handling against a small HTTPS server on 127.0.0.1 that
 * requires a client certificate from the test fleet CA (test/fixtures/certs/nginx-runtime/): what
 * it sends, how it reads each reply, and what it refuses. The real channel (nginx and Lua) is in
 * test/integration/nginx-runtime-reconcile.test.ts.
 */

const fixture = (name: string) =>
  readFileSync(new URL(`../../../fixtures/certs/nginx-runtime/${name}`, import.meta.url), 'utf8');
const CA = fixture('ca.crt');

function clientTls(): RuntimeClientTls {
  const source = new RuntimeClientTls();
  source.update({ certificatePem: fixture('client.crt'), keyPem: fixture('client.key'), caBundlePem: CA, serial: '1' });
  return source;
}

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: string;
  /** The client certificate's subject CN, as the server verified it. */
  readonly client: string | undefined;
}

type Answer = { status: number; body: string } | 'destroy' | 'hang';

/** A fake channel: answers each request as `answer` says, records requests and TLS connections. */
class FakeChannel {
  readonly seen: Seen[] = [];
  connections = 0;
  private readonly server: https.Server;

  private constructor(
    cert: 'node' | 'other-node' | 'stranger-node',
    private answer: (seen: Seen, nth: { onSocket: number }) => Answer,
  ) {
    this.server = https.createServer(
      {
        cert: fixture(`${cert}.crt`),
        key: fixture(`${cert}.key`),
        ca: CA,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const socket = req.socket as tls.TLSSocket & { requests?: number };
          socket.requests = (socket.requests ?? 0) + 1;
          const seen: Seen = {
            method: req.method ?? '',
            path: req.url ?? '',
            contentType: req.headers['content-type'],
            body: Buffer.concat(chunks).toString('utf8'),
            client: (socket.getPeerCertificate().subject as { CN?: string } | undefined)?.CN,
          };
          this.seen.push(seen);
          const a = this.answer(seen, { onSocket: socket.requests });
          if (a === 'destroy') return void socket.destroy();
          if (a === 'hang') return;
          res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
        });
      },
    );
    this.server.on('secureConnection', () => (this.connections += 1));
  }

  static async start(
    answer: (seen: Seen, nth: { onSocket: number }) => Answer,
    cert: 'node' | 'other-node' | 'stranger-node' = 'node',
  ): Promise<FakeChannel> {
    const fake = new FakeChannel(cert, answer);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fakes.push(fake);
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  setAnswer(answer: (seen: Seen, nth: { onSocket: number }) => Answer): void {
    this.answer = answer;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const fakes: FakeChannel[] = [];
const clients: NginxRuntimeClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

function client(port: number, options: ConstructorParameters<typeof NginxRuntimeClient>[2] = {}, source = clientTls()) {
  const c = new NginxRuntimeClient({ host: '127.0.0.1', port }, source, options);
  clients.push(c);
  return c;
}

const json = (status: number, body: unknown): Answer => ({ status, body: JSON.stringify(body) });
const HASH = '0123456789abcdef';
const HELD = { upstreams: { t_a_web: { revision: 4, hash: HASH } }, caps: {}, fileRevision: 3 };

/** What the call failed with (it must fail). */
async function failure(call: Promise<unknown>): Promise<NginxRuntimeError> {
  const outcome = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(outcome).toBeInstanceOf(NginxRuntimeError);
  return outcome as NginxRuntimeError;
}

describe('the NGINX runtime channel client', () => {
  it("reads what the node holds with the control plane's client certificate, over one kept-alive connection", async () => {
    const fake = await FakeChannel.start(() => json(200, HELD));
    const c = client(fake.port);
    expect(await c.held()).toEqual(HELD);
    expect(await c.held()).toEqual(HELD);
    expect(fake.seen.map((s) => `${s.method} ${s.path} ${s.client}`)).toEqual([
      'GET /switchyard/v1/state switchyard-control-plane',
      'GET /switchyard/v1/state switchyard-control-plane',
    ]);
    expect(fake.connections).toBe(1);
  });

  it('pushes the StatePush as JSON and reads the reply, an empty Lua list written as {} included', async () => {
    const fake = await FakeChannel.start(() => ({ status: 200, body: '{"applied":2,"stale":{},"failed":{}}' }));
    const push: StatePush = {
      complete: false,
      upstreams: {},
      caps: { a: { revision: 5, hash: HASH, value: { maxConnections: 10, requestsPerSecond: 5 } } },
      removed: { upstreams: ['t_old'], caps: [], revision: 5 },
    };
    expect(await client(fake.port).push(push)).toEqual({ applied: 2, stale: [], failed: [] });
    expect(fake.seen[0]).toMatchObject({
      method: 'POST',
      path: '/switchyard/v1/state',
      contentType: 'application/json',
    });
    expect(JSON.parse(fake.seen[0]!.body)).toEqual(push);
  });

  it('reads stats into the contract shape', async () => {
    const counters = {
      requests: 3,
      responses2xx: 3,
      responses3xx: 0,
      responses4xx: 0,
      responses5xx: 0,
      denied: 0,
      refused: 0,
      bytesIn: 10,
      bytesOut: 20,
      latencyMsSum: 1.5,
      active: 0,
    };
    const stats = {
      now: 1_700_000_000_000,
      vips: { 'a/www': { ...counters, tenant: 'a', vip: 'www' } },
      upstreams: { t_a_web: { ...counters, tenant: 'a', pool: 'web' } },
      peers: { 't_a_web/m1': { ...counters, upstream: 't_a_web', peer: 'm1', health: 'down', lastCheck: 'timeout' } },
      tenants: { a: { active: 0, requestsPerSecond: 2 } },
    };
    const fake = await FakeChannel.start(() => json(200, stats));
    expect(await client(fake.port).stats()).toEqual(stats);
    expect(fake.seen[0]!.path).toBe('/switchyard/v1/stats');
  });

  it('refuses a reply that is not the contract shape, naming the field', async () => {
    const fake = await FakeChannel.start(() =>
      json(200, { upstreams: { t_a_web: { revision: 4, hash: 'xyz' } }, caps: {}, fileRevision: 0 }),
    );
    const e = await failure(client(fake.port).held());
    expect(e.failure).toBe('protocol');
    expect(e.message).toMatch(/not a HeldState \(upstreams\.t_a_web\.hash: must be 16 hex characters/);
    fake.setAnswer(() => ({ status: 200, body: '<html>hello</html>' }));
    expect((await failure(client(fake.port).held())).message).toMatch(/not JSON/);
  });

  it("says the node refused the client certificate, from the module's 403 and from nginx's own 400", async () => {
    const fake = await FakeChannel.start(() => json(403, { error: { message: 'client certificate required' } }));
    const e = await failure(client(fake.port).held());
    expect(e.failure).toBe('refused');
    expect(e.message).toMatch(/refused the control plane's client certificate \(403: client certificate required\)/);
    fake.setAnswer(() => ({
      status: 400,
      body: '<html><head><title>400 No required SSL certificate was sent</title></head></html>',
    }));
    expect((await failure(client(fake.port).held())).failure).toBe('refused');
  });

  it('says when the node does not serve the channel, and what a 400 named, so the mismatch can be found', async () => {
    const fake = await FakeChannel.start(() => json(404, { error: { message: 'not found' } }));
    const missing = await failure(client(fake.port).held());
    expect(missing.failure).toBe('protocol');
    expect(missing.message).toMatch(
      /does not serve GET \/switchyard\/v1\/state \(404: not found\).*apply the node's latest configuration/,
    );
    fake.setAnswer(() =>
      json(400, { error: { field: 'upstreams.t_a_web.peers[1].weight', message: 'must be 0-256' } }),
    );
    const refused = await failure(client(fake.port).push({ complete: false, upstreams: {}, caps: {} }));
    expect(refused.message).toMatch(
      /refused POST \/switchyard\/v1\/state \(400: upstreams\.t_a_web\.peers\[1\]\.weight: must be 0-256\)/,
    );
  });

  it('reads a 507 push reply as the entries that failed, and a bare 507 as a full dictionary', async () => {
    const reply = { applied: 1, stale: [], failed: [{ key: 'upstream t_b_api', error: 'sy_state: no memory' }] };
    const fake = await FakeChannel.start(() => json(507, reply));
    expect(await client(fake.port).push({ complete: false, upstreams: {}, caps: {} })).toEqual(reply);
    fake.setAnswer(() => json(507, { error: { message: 'sy_state: no memory' } }));
    const e = await failure(client(fake.port).push({ complete: false, upstreams: {}, caps: {} }));
    expect(e.failure).toBe('full');
    expect(e.message).toMatch(/full \(507: sy_state: no memory\).*lua_shared_dict/);
  });

  it('refuses a node whose certificate names another address, before sending anything', async () => {
    const fake = await FakeChannel.start(() => json(200, HELD), 'other-node');
    const e = await failure(client(fake.port).held());
    expect(e.failure).toBe('tls');
    expect(e.message).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list/);
    expect(fake.seen).toEqual([]);
  });

  it('refuses a node whose certificate is not from the fleet CA, before sending anything', async () => {
    const fake = await FakeChannel.start(() => json(200, HELD), 'stranger-node');
    const e = await failure(client(fake.port).held());
    expect(e.failure).toBe('tls');
    expect(fake.seen).toEqual([]);
  });

  it('sends nothing before the control plane has a client certificate', async () => {
    const fake = await FakeChannel.start(() => json(200, HELD));
    const e = await failure(client(fake.port, {}, new RuntimeClientTls()).held());
    expect(e.message).toMatch(/no client certificate .* yet/);
    expect(fake.connections).toBe(0);
  });

  it('says nothing listens when the connection is refused', async () => {
    const fake = await FakeChannel.start(() => json(200, HELD));
    const port = fake.port;
    await fake.close();
    const e = await failure(client(port).held());
    expect(e.failure).toBe('unavailable');
    expect(e.message).toMatch(/nothing listens on tls:127\.0\.0\.1:\d+ \(connection refused\)/);
  });

  it('gives up on a node that does not answer within the request timeout', async () => {
    const fake = await FakeChannel.start(() => 'hang');
    const e = await failure(client(fake.port, { requestTimeoutMs: 300 }).held());
    expect(e.failure).toBe('timeout');
    expect(e.message).toMatch(
      /no complete reply from tls:127\.0\.0\.1:\d+ to GET \/switchyard\/v1\/state within 300 ms/,
    );
  });

  it('retries once, on a new connection, when the node closes a kept-alive connection as it is reused', async () => {
    // nginx closing an idle keep-alive connection just as the next request goes out on it.
    const fake = await FakeChannel.start((_seen, nth) => (nth.onSocket > 1 ? 'destroy' : json(200, HELD)));
    const c = client(fake.port);
    expect(await c.held()).toEqual(HELD);
    expect(await c.held()).toEqual(HELD);
    expect(fake.connections).toBe(2);
    expect(fake.seen).toHaveLength(3);
  });

  it('fails every call at once after it is closed', async () => {
    const fake = await FakeChannel.start(() => json(200, HELD));
    const c = client(fake.port);
    c.close();
    expect((await failure(c.held())).message).toMatch(/is closed/);
    expect(fake.connections).toBe(0);
  });
});
