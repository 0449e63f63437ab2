import { EventEmitter } from 'node:events';
import pg from 'pg';

export interface DedicatedClientOptions {
  readonly url: string;
  /** Shown in pg_stat_activity, where operators (and tests) find the connection. */
  readonly applicationName: string;
  /** Milliseconds before the next attempt after `failures` consecutive failures (1 = the first). */
  readonly retryDelay: (failures: number) => number;
  /** Runs on each new connection before it counts as up (LISTEN, for one); a throw fails the attempt. */
  readonly prepare?: (client: pg.Client) => Promise<void>;
}

/**
 * A PostgreSQL connection of its own, outside the pool, for what lives in a session: LISTEN, a
 * session-level advisory lock. When the connection fails or ends it is dropped and made again
 * after `retryDelay`, for as long as it is not stopped; 'down' says why and when it tries again,
 * 'up' hands over each new connection. Every client it makes keeps an 'error' handler for its
 * whole life: pg emits 'error' when the server goes away (a restart, an admin kill), and an
 * unhandled one would take the process down.
 */
export class DedicatedClient extends EventEmitter<{ up: [client: pg.Client]; down: [err: Error, retryMs: number] }> {
  /** The connection (or connection attempt) in use; events from any other are stale. */
  private current: pg.Client | undefined;
  private up = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: DedicatedClientOptions) {
    super();
  }

  get connected(): boolean {
    return this.up;
  }

  /** The connected client, or undefined while down. */
  get client(): pg.Client | undefined {
    return this.up ? this.current : undefined;
  }

  /** Makes the first attempt; resolves once it has succeeded or failed (a failure is retried). */
  start(): Promise<void> {
    return this.connect();
  }

  /** Ends the connection for good: no more attempts, no more events. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.current;
    this.current = undefined;
    this.up = false;
    await client?.end().catch(() => undefined);
  }

  /** The caller saw `client` fail (a query threw): drop it and reconnect. A client already dropped is left alone. */
  drop(client: pg.Client, err: Error): void {
    this.lost(client, err);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: this.options.applicationName,
    });
    this.current = client;
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      await this.options.prepare?.(client);
    } catch (err) {
      this.lost(client, err as Error);
      return;
    }
    if (this.current !== client) return;
    this.failures = 0;
    this.up = true;
    this.emit('up', client);
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.current !== client) return;
    this.current = undefined;
    this.up = false;
    // Its 'error' handler stays: a late error from the dead client must not be unhandled.
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.stopped) return;
    this.failures += 1;
    const retryMs = this.options.retryDelay(this.failures);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), retryMs);
    this.emit('down', err, retryMs);
  }
}
