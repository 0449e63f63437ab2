import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { CHANGES_CHANNEL } from '../db/change-channel.js';

export interface ChangeEvent {
  readonly revision: number;
  /** True for a commit made by this process. */
  readonly local: boolean;
}

/**
 * Committed revisions, as they happen: this process's own commits (reported by `mutate` right
 * after COMMIT) and, with a PostgreSQL server, everyone else's through LISTEN/NOTIFY on a
 * dedicated connection that reconnects with backoff. `connected` says whether remote commits are
 * being heard; consumers that cache must not trust their cache while it is false.
 */
/** NOTIFY payload prefix: an agent reported a reload of this node (it forgot its runtime changes). */
export const RELOADED_PREFIX = 'reloaded:';
/** NOTIFY payload prefix: a node's agent could not reload with some tenants' new listeners; build it again without them. */
export const REBUILD_PREFIX = 'rebuild:';

export class ChangeFeed extends EventEmitter<{ change: [ChangeEvent]; connected: [boolean]; reloaded: [string]; rebuild: [string] }> {
  /** The connection (or connection attempt) in use; events from any other are stale. */
  private client: pg.Client | undefined;
  private stopped = false;
  private retryMs = 100;
  private _connected: boolean;
  private timer: NodeJS.Timeout | undefined;

  /** `url` undefined: single-process (embedded) mode, local commits are all there is. */
  constructor(
    private readonly url: string | undefined,
    private readonly logger: Logger,
  ) {
    super();
    this._connected = url === undefined;
  }

  get connected(): boolean {
    return this._connected;
  }

  async start(): Promise<void> {
    if (this.url !== undefined) await this.connect();
  }

  /** Called by the write path after its transaction committed. */
  committed(revision: number): void {
    this.emit('change', { revision, local: true });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'switchyard-change-feed' });
    this.client = client;
    client.on('notification', (msg) => {
      if (msg.channel !== CHANGES_CHANNEL || msg.payload === undefined) return;
      if (msg.payload.startsWith(RELOADED_PREFIX)) return void this.emit('reloaded', msg.payload.slice(RELOADED_PREFIX.length));
      if (msg.payload.startsWith(REBUILD_PREFIX)) return void this.emit('rebuild', msg.payload.slice(REBUILD_PREFIX.length));
      const revision = Number(msg.payload);
      if (Number.isFinite(revision)) this.emit('change', { revision, local: false });
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
      this.retryMs = 100;
      this.setConnected(true);
    } catch (err) {
      this.lost(client, err as Error);
    }
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.stopped) return;
    this.setConnected(false);
    this.logger.warn({ err, retryMs: this.retryMs }, 'change feed lost its database connection; reconnecting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 10_000);
  }

  private setConnected(value: boolean): void {
    if (this._connected === value) return;
    this._connected = value;
    this.emit('connected', value);
  }
}
