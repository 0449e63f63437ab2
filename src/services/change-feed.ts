import { EventEmitter } from 'node:events';
import { listenForChanges } from '../db/change-channel.js';
import { DedicatedClient } from '../db/dedicated-client.js';
import { backoffDelay, type BackoffPolicy } from '../util/backoff.js';
import type { Logger } from '../logger.js';

export interface ChangeEvent {
  readonly revision: number;
  /** True for a commit made by this process. */
  readonly local: boolean;
}

/** NOTIFY payload prefix: an agent reported a reload of this node (it forgot its runtime changes). */
export const RELOADED_PREFIX = 'reloaded:';
/** NOTIFY payload prefix: a node's agent could not reload with some tenants' new listeners; build it again without them. */
export const REBUILD_PREFIX = 'rebuild:';

/** How soon the feed tries its connection again: it hears nothing meanwhile, so it starts fast. */
const RECONNECT: BackoffPolicy = { initialMs: 100, maxMs: 10_000, factor: 2 };

/**
 * Committed revisions, as they happen: this process's own commits (reported by `mutate` right
 * after COMMIT) and, with a PostgreSQL server, everyone else's through LISTEN/NOTIFY on a
 * dedicated connection that reconnects with backoff. `connected` says whether remote commits are
 * being heard; consumers that cache must not trust their cache while it is false.
 */
export class ChangeFeed extends EventEmitter<{
  change: [ChangeEvent];
  connected: [boolean];
  reloaded: [string];
  rebuild: [string];
}> {
  private connection: DedicatedClient | undefined;
  private _connected: boolean;

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
    if (this.url === undefined) return;
    this.connection = new DedicatedClient({
      url: this.url,
      applicationName: 'switchyard-change-feed',
      retryDelay: (failures) => backoffDelay(RECONNECT, failures),
      prepare: (client) => listenForChanges(client, (payload) => this.heard(payload)),
    });
    this.connection.on('up', () => this.setConnected(true));
    this.connection.on('down', (err, retryMs) => {
      this.setConnected(false);
      this.logger.warn({ err, retryMs }, 'change feed lost its database connection; reconnecting');
    });
    await this.connection.start();
  }

  /** Called by the write path after its transaction committed. */
  committed(revision: number): void {
    this.emit('change', { revision, local: true });
  }

  async stop(): Promise<void> {
    await this.connection?.stop();
  }

  private heard(payload: string): void {
    if (payload.startsWith(RELOADED_PREFIX)) return void this.emit('reloaded', payload.slice(RELOADED_PREFIX.length));
    if (payload.startsWith(REBUILD_PREFIX)) return void this.emit('rebuild', payload.slice(REBUILD_PREFIX.length));
    const revision = Number(payload);
    if (Number.isFinite(revision)) this.emit('change', { revision, local: false });
  }

  private setConnected(value: boolean): void {
    if (this._connected === value) return;
    this._connected = value;
    this.emit('connected', value);
  }
}
