import { EventEmitter } from 'node:events';
import { DedicatedClient } from '../db/dedicated-client.js';
import { tryLeaderLock } from '../db/leader-lock.js';
import type { Logger } from '../logger.js';

/**
 * One leader among the control-plane replicas, through a PostgreSQL session-level advisory lock
 * held on a dedicated connection: the lock dies with the connection, so when the leader's process
 * or network dies the database releases it and another replica takes over on its next try
 * (within `retryMs`). The embedded database serves one process, which is always the leader.
 */
export class LeaderElector extends EventEmitter<{ elected: []; deposed: [] }> {
  private connection: DedicatedClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private leading: boolean;

  constructor(
    private readonly url: string | undefined,
    private readonly logger: Logger,
    private readonly retryMs = 5_000,
  ) {
    super();
    this.leading = false;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    if (this.url === undefined) {
      this.setLeading(true);
      return;
    }
    // A lost connection is made again after one interval, as a lock held elsewhere is tried again.
    const connection = new DedicatedClient({
      url: this.url,
      applicationName: 'switchyard-leader',
      retryDelay: () => this.retryMs,
    });
    connection.on('up', () => void this.attempt());
    connection.on('down', (err) => {
      clearTimeout(this.timer);
      if (this.leading) this.logger.warn({ err }, 'lost the leader lock connection; stepping down');
      this.setLeading(false);
    });
    this.connection = connection;
    void connection.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const connection = this.connection;
    this.connection = undefined;
    this.setLeading(false);
    await connection?.stop();
  }

  private async attempt(): Promise<void> {
    const connection = this.connection;
    const client = connection?.client;
    if (this.stopped || connection === undefined || client === undefined) return;
    let locked: boolean;
    try {
      locked = await tryLeaderLock(client);
    } catch (err) {
      connection.drop(client, err as Error);
      return;
    }
    // An answer from a connection that has since been dropped holds nothing.
    if (this.stopped || connection.client !== client) return;
    if (locked) {
      this.setLeading(true);
      return; // held until the connection ends
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.attempt(), this.retryMs);
  }

  private setLeading(value: boolean): void {
    if (this.leading === value) return;
    this.leading = value;
    this.logger.info(
      { leader: value },
      value ? 'this replica is the leader: running fleet jobs' : 'this replica is no longer the leader',
    );
    this.emit(value ? 'elected' : 'deposed');
  }
}
