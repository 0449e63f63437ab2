import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { showProc } from '../../../../src/fleet/runtime-api/commands/master-commands.js';
import { delServer, getWeight, setServerWeight } from '../../../../src/fleet/runtime-api/commands/server-commands.js';
import { setSslCert } from '../../../../src/fleet/runtime-api/commands/ssl-cert-commands.js';
import { showInfo } from '../../../../src/fleet/runtime-api/commands/stat-commands.js';
import { createRuntimeApi } from '../../../../src/fleet/runtime-api/runtime-api.js';
import { RuntimeClient, type RuntimeClientOptions } from '../../../../src/fleet/runtime-api/runtime-client.js';
import { RuntimeCommandError } from '../../../../src/fleet/runtime-api/runtime-executor.js';
import { FakeRuntimeServer, type FakeHandler } from './fake-runtime-server.js';

/** Answers like HAProxy: weights and state changes print nothing, unknown servers are refused. */
const haproxyLike: FakeHandler = (line) => {
  if (/^set server be\/s\d+ (weight|state) /.test(line)) return '';
  if (/^set server /.test(line)) return 'No such server.';
  if (line === 'show info') return 'Name: HAProxy\nVersion: 2.6.12\nPid: 42\nStopping: 0';
  if (/^get weight be\/s\d+$/.test(line)) return '7 (initial 10)';
  if (line.startsWith('set ssl cert ')) return `Transaction created for certificate ${line.split(' ')[3]}!`;
  return 'Unknown command, but maybe one of the following ones is a better match:';
};

/** Loopback sockets answer within milliseconds; the bound is generous for a loaded machine. */
const WAIT = { timeout: 1000, interval: 5 };

describe('RuntimeClient against a fake Runtime API socket', () => {
  let fake: FakeRuntimeServer;
  let client: RuntimeClient;
  const connect = (options: RuntimeClientOptions = {}): RuntimeClient =>
    (client = new RuntimeClient({ host: '127.0.0.1', port: fake.port }, options));

  beforeEach(async () => {
    fake = await FakeRuntimeServer.start(haproxyLike);
  });
  afterEach(async () => {
    vi.useRealTimers();
    await client?.close();
    await fake.stop();
  });

  it('pipelines a batch over one connection and returns the results in order', async () => {
    connect();
    const commands = Array.from({ length: 2000 }, (_, i) => setServerWeight('be', `s${i}`, i % 257));
    const results = await client.execute(commands);
    expect(results).toHaveLength(2000);
    expect(results.every((r, i) => r.status === 'ok' && r.command === commands[i])).toBe(true);
    // Each batch is led by a pipelined `show info` that checks the worker is not stopping.
    expect(fake.received.slice(0, 4)).toEqual([
      'show info',
      'set server be/s0 weight 0',
      'set server be/s1 weight 1',
      'set server be/s2 weight 2',
    ]);
    const again = await client.execute([showInfo()]);
    expect(again[0]).toMatchObject({ status: 'ok', output: 'Name: HAProxy\nVersion: 2.6.12\nPid: 42\nStopping: 0' });
    expect(fake.connections).toBe(1);
  });

  it('turns error replies into per-command errors without failing the rest', async () => {
    connect();
    const results = await client.execute([
      setServerWeight('be', 's1', 5),
      setServerWeight('other', 's1', 5),
      getWeight('be', 's1'),
      delServer('be', 's1'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'error', 'ok', 'error']);
    expect(results[1]).toMatchObject({ message: 'No such server.' });
    expect(results[2]).toMatchObject({ output: '7 (initial 10)' });
    expect(results[3]).toMatchObject({ message: expect.stringMatching(/^Unknown command/) });
  });

  it('sends a << payload and strips the "+ " prompts from its reply', async () => {
    connect();
    const pem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';
    const [set, info] = await client.execute([setSslCert('/etc/c.pem', pem), showInfo()]);
    expect(set).toMatchObject({ status: 'ok', output: 'Transaction created for certificate /etc/c.pem!' });
    expect(info).toMatchObject({ status: 'ok' });
  });

  it('when the connection drops mid-batch, the rest are not executed and the next call reconnects', async () => {
    connect();
    fake.setHandler((line) => (line === 'set server be/s3 weight 1' ? 'drop' : haproxyLike(line, null)));
    const batch = [1, 2, 3, 4, 5].map((i) => setServerWeight('be', `s${i}`, 1));
    const results = await client.execute(batch);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'not-executed', 'not-executed', 'not-executed']);
    expect(results[2]).toMatchObject({ message: expect.stringContaining('closed') });

    fake.setHandler(haproxyLike);
    const retry = await client.execute(batch.slice(2));
    expect(retry.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
    expect(fake.connections).toBe(2);
  });

  it('when HAProxy closes an idle session (stats timeout), the next call opens a new one without failing', async () => {
    connect();
    await client.execute([showInfo()]);
    fake.dropAll();
    // Bounded: the client hears the close on loopback within this, and nothing it exposes says so.
    await new Promise((r) => setTimeout(r, 20));
    const [result] = await client.execute([showInfo()]);
    expect(result).toMatchObject({ status: 'ok' });
    expect(fake.connections).toBe(2);
  });

  it('reopens rather than reuses a connection idle longer than idleTimeoutMs', async () => {
    // Idle time is read from Date: faked alone, so the sockets and their timers stay real.
    vi.useFakeTimers({ toFake: ['Date'] });
    connect({ idleTimeoutMs: 30 });
    await client.execute([showInfo()]);
    vi.advanceTimersByTime(29);
    await client.execute([showInfo()]);
    expect(fake.connections, 'idle 29 ms: reused').toBe(1);
    vi.advanceTimersByTime(30);
    await client.execute([showInfo()]);
    expect(fake.connections, 'idle 30 ms: reopened').toBe(2);
  });

  it('warm() connects ahead of a batch, which then finds the connection open', async () => {
    connect();
    client.warm();
    await expect.poll(() => fake.connections, WAIT).toBe(1);
    expect(fake.received).toEqual([]); // connected, nothing sent yet
    await client.execute([setServerWeight('be', 's1', 3)]);
    expect(fake.connections).toBe(1);
  });

  it('warm() leaves a fresh connection alone and replaces one past half its idle time', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    connect({ idleTimeoutMs: 80 });
    await client.execute([showInfo()]);
    vi.advanceTimersByTime(39);
    client.warm();
    // A negative: a connection warm() started would reach the loopback fake within this bounded wait.
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.connections).toBe(1);
    vi.advanceTimersByTime(1); // 40 ms, half the idle time: a batch soon would find it nearly stale
    client.warm();
    await expect.poll(() => fake.connections, WAIT).toBe(2);
    const [result] = await client.execute([showInfo()]);
    expect(result).toMatchObject({ status: 'ok' });
    expect(fake.connections).toBe(2);
  });

  it('a reply that never comes fails its command after commandTimeoutMs and the rest are not executed', async () => {
    connect({ commandTimeoutMs: 80 });
    fake.setHandler((line) => (line === 'set server be/s2 weight 1' ? 'hang' : haproxyLike(line, null)));
    const started = Date.now();
    const results = await client.execute([1, 2, 3].map((i) => setServerWeight('be', `s${i}`, 1)));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(results.map((r) => r.status)).toEqual(['ok', 'error', 'not-executed']);
    expect(results[1]).toMatchObject({
      message: expect.stringMatching(/no reply .* within 80 ms; the command may or may not have been applied/),
    });
    fake.setHandler(haproxyLike);
    expect((await client.execute([showInfo()]))[0]).toMatchObject({ status: 'ok' });
  });

  it('a batch that outlives its timeout returns at the deadline', async () => {
    connect({ commandTimeoutMs: 1000 });
    fake.setHandler((line) => ({ delayMs: 40, reply: haproxyLike(line, null) as string }));
    const started = Date.now();
    const results = await client.execute(
      [1, 2, 3, 4, 5, 6].map((i) => setServerWeight('be', `s${i}`, 1)),
      { timeoutMs: 150 },
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(2000);
    const statuses = results.map((r) => r.status);
    expect(statuses.slice(0, 2)).toEqual(['ok', 'ok']);
    expect(statuses).toContain('error');
    expect(statuses.at(-1)).toBe('not-executed');
  });

  it('refuses unsafe or foreign commands before anything is sent', async () => {
    connect();
    const smuggled = {
      ...setServerWeight('be', 's1', 1),
      line: 'set server be/s1 weight 1\nshutdown sessions server be/s1',
    };
    const results = await client.execute([showInfo(), smuggled, showProc()]);
    expect(results.map((r) => r.status)).toEqual(['not-executed', 'error', 'error']);
    expect(results[1]).toMatchObject({ message: expect.stringContaining('unsafe') });
    expect(results[2]).toMatchObject({ message: expect.stringContaining('master CLI') });
    expect(fake.received).toEqual([]);
    expect(fake.connections).toBe(0);
  });

  it('serves concurrent batches on the same connection, each with its own results', async () => {
    connect();
    const [a, b] = await Promise.all([
      client.execute([setServerWeight('be', 's1', 1), setServerWeight('x', 'y', 1)]),
      client.execute([getWeight('be', 's2'), showInfo()]),
    ]);
    expect(a.map((r) => r.status)).toEqual(['ok', 'error']);
    expect(b.map((r) => r.status)).toEqual(['ok', 'ok']);
    expect(fake.connections).toBe(1);
  });

  it('close() reports waiting commands not executed and later calls fail fast', async () => {
    connect();
    fake.setHandler(() => 'hang');
    const pending = client.execute([showInfo(), showInfo()]);
    // The batch has reached the proxy, which does not answer: its commands are waiting.
    await expect.poll(() => fake.received.length, WAIT).toBeGreaterThan(0);
    await client.close();
    expect((await pending).map((r) => r.status)).toEqual(['not-executed', 'not-executed']);
    expect((await client.execute([showInfo()]))[0]).toMatchObject({
      status: 'not-executed',
      message: 'runtime client is closed',
    });
  });

  it('an unexpected extra reply desynchronises nothing: the connection is dropped and reopened', async () => {
    connect();
    fake.setHandler((line) => (line === 'get weight be/s9' ? '7 (initial 10)\n\n> surprise' : haproxyLike(line, null)));
    await client.execute([getWeight('be', 's9')]);
    // The client hung up on the session that said too much.
    await expect.poll(() => fake.open, WAIT).toBe(0);
    fake.setHandler(haproxyLike);
    const [result] = await client.execute([getWeight('be', 's1')]);
    expect(result).toMatchObject({ status: 'ok', output: '7 (initial 10)' });
    expect(fake.connections).toBe(2);
  });

  it('a session left with a worker that is stopping after a reload is dropped and the batch re-sent', async () => {
    connect();
    await client.execute([showInfo()]);
    // A reload: the old session now reaches a stopping worker; new sessions reach the new one.
    const firstSession = fake.connections;
    fake.setHandler((line) =>
      line === 'show info' && fake.connections === firstSession
        ? 'Name: HAProxy\nPid: 42\nStopping: 1'
        : haproxyLike(line, null),
    );
    const results = await client.execute([setServerWeight('be', 's1', 9)]);
    expect(results[0]).toMatchObject({ status: 'ok' });
    expect(fake.connections).toBe(2);
    expect(fake.received.filter((l) => l === 'set server be/s1 weight 9')).toHaveLength(2);
  });

  it('when every session reaches a stopping worker, the batch is reported not executed', async () => {
    connect();
    fake.setHandler((line) => (line === 'show info' ? 'Name: HAProxy\nStopping: 1' : haproxyLike(line, null)));
    const [result] = await client.execute([setServerWeight('be', 's1', 9)]);
    expect(result).toMatchObject({
      status: 'not-executed',
      message: expect.stringContaining('stopping after a reload'),
    });
    expect(fake.connections).toBe(3);
  });

  it('the facade throws an UpstreamError naming the command when HAProxy refuses it', async () => {
    connect();
    const api = createRuntimeApi(client);
    await expect(api.servers.setWeight('be', 's1', 3)).resolves.toBeUndefined();
    await expect(api.servers.getWeight('be', 's1')).resolves.toEqual({ current: 7, initial: 10 });
    const error = await api.servers.setWeight('other', 's1', 3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeCommandError);
    expect(error).toMatchObject({ name: 'UpstreamError', message: expect.stringContaining('No such server.') });
    expect(() => api.servers.setWeight('be', 's;1', 3)).toThrow(/unsafe/);
  });
});

describe('RuntimeClient when the node is down', () => {
  it('retries with capped exponential backoff, then reports every command not executed', async () => {
    const fake = await FakeRuntimeServer.start(haproxyLike);
    const port = fake.port;
    await fake.stop(); // nothing listens there any more
    const client = new RuntimeClient(
      { host: '127.0.0.1', port },
      { connectAttempts: 3, backoff: { initialMs: 40, maxMs: 60, factor: 2 } },
    );
    const started = Date.now();
    const results = await client.execute([showInfo(), getWeight('be', 's1')]);
    const elapsed = Date.now() - started;
    expect(results.map((r) => r.status)).toEqual(['not-executed', 'not-executed']);
    expect(results[0]).toMatchObject({
      message: expect.stringMatching(/cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED/),
    });
    expect(elapsed).toBeGreaterThanOrEqual(40 + 60 - 5); // 40 ms, then 80 capped at 60
    expect(elapsed).toBeLessThan(3000);

    // Inside the backoff window a call with a short budget fails fast instead of hammering the node.
    const quick = await client.execute([showInfo()], { timeoutMs: 10 });
    expect(quick[0]).toMatchObject({ status: 'not-executed', message: expect.stringContaining('next attempt in') });
    await client.close();
  });

  it('finds the node again once it is back', async () => {
    const fake = await FakeRuntimeServer.start(haproxyLike);
    const port = fake.port;
    await fake.stop();
    const client = new RuntimeClient(
      { host: '127.0.0.1', port },
      { connectAttempts: 1, backoff: { initialMs: 20, maxMs: 20 } },
    );
    expect((await client.execute([showInfo()]))[0]!.status).toBe('not-executed');
    const back = await FakeRuntimeServer.startOn(port, haproxyLike);
    try {
      expect((await client.execute([showInfo()]))[0]).toMatchObject({ status: 'ok' });
    } finally {
      await client.close();
      await back.stop();
    }
  });
});
