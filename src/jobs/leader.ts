import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../logger.js';

/** Same constant in every replica; it only has to differ from the migration lock's. */
const LEADER_LOCK_KEY = 0x5377_6c64; // "Swld"

/**
 * One leader among the control-plane replicas, through a PostgreSQL session-level advisory lock
 * held on a dedicated connection: the lock dies with the connection, so when the leader's process
 * or network dies the database releases it and another replica takes over on its next try
 * (within `retryMs`). The embedded database serves one process, which is always the leader.
 */
export class LeaderElector extends EventEmitter<{ elected: []; deposed: [] }> {
  private client: pg.Client | undefined;
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
    void this.attempt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    this.setLeading(false);
    await client?.end().catch(() => undefined);
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.client) {
        const client = new pg.Client({ connectionString: this.url, application_name: 'switchyard-leader' });
        client.on('error', (err) => this.lost(client, err));
        client.on('end', () => this.lost(client, new Error('connection ended')));
        this.client = client;
        await client.connect();
      }
      const { rows } = await this.client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [LEADER_LOCK_KEY]);
      if (rows[0]?.locked) {
        this.setLeading(true);
        return; // held until the connection ends
      }
    } catch (err) {
      if (this.client) this.lost(this.client, err as Error);
      return;
    }
    this.schedule();
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.stopped) return;
    if (this.leading) this.logger.warn({ err }, 'lost the leader lock connection; stepping down');
    this.setLeading(false);
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.attempt(), this.retryMs);
  }

  private setLeading(value: boolean): void {
    if (this.leading === value) return;
    this.leading = value;
    this.logger.info({ leader: value }, value ? 'this replica is the leader: running fleet jobs' : 'this replica is no longer the leader');
    this.emit(value ? 'elected' : 'deposed');
  }
}
