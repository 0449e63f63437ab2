import type { Db } from '../db/connect.js';
import { deleteOlderThan, type RetainedTable } from '../db/retention-repository.js';
import type { Logger } from '../logger.js';
import { IDEMPOTENCY_TTL_MS } from '../services/mutation.js';
import { every, type Scheduled } from './schedule.js';

export interface RetentionOptions {
  /** Days the audit log is kept; 0 keeps it forever. */
  readonly auditDays: number;
  /** Days allocation history (every cap change and its reason) is kept; 0 keeps it forever. */
  readonly allocationHistoryDays: number;
  /** Seconds between passes (cron-paced, see schedule.ts); hourly by default. */
  readonly intervalS?: number;
}

const DAY_MS = 86_400_000;

/**
 * Trims the append-only tables that would otherwise grow without end: the audit log and the
 * allocation history after their configured days, idempotency keys once they can no longer
 * be replayed (24 h; a key is otherwise only cleared when its token reuses it), and config
 * segments no kept config version uses. The leader runs
 * it: once when it starts leading, then every interval, in small batches (retention-repository).
 * Stats samples and rollups have their own retention in the stats poller.
 */
export class RetentionJob {
  private schedule: Scheduled | null = null;
  private first: Promise<unknown> | null = null;

  constructor(
    private readonly deps: {
      readonly db: Db;
      readonly logger: Logger;
      /** Deletes the config segments no kept config version references (ConfigService.sweepSegments). */
      readonly sweepSegments?: () => Promise<number>;
    },
    private readonly options: RetentionOptions,
  ) {}

  start(): void {
    if (this.schedule !== null) return;
    const run = () => this.pass().then(() => undefined);
    const failed = (err: unknown) => this.deps.logger.warn({ err }, 'retention pass failed; the next one retries');
    this.schedule = every(this.options.intervalS ?? 3600, run, failed);
    this.first = run().catch(failed);
  }

  async stop(): Promise<void> {
    const schedule = this.schedule;
    this.schedule = null;
    await schedule?.stop();
    await this.first;
  }

  /** One pass: what each table lost. A table kept forever is not touched. */
  async pass(now = new Date()): Promise<Partial<Record<RetainedTable, number>>> {
    const cutoffs: Partial<Record<RetainedTable, Date>> = {
      ...(this.options.auditDays > 0 && { audit_events: new Date(now.getTime() - this.options.auditDays * DAY_MS) }),
      ...(this.options.allocationHistoryDays > 0 && {
        allocation_history: new Date(now.getTime() - this.options.allocationHistoryDays * DAY_MS),
      }),
      idempotency_keys: new Date(now.getTime() - IDEMPOTENCY_TTL_MS),
    };
    const deleted: Partial<Record<RetainedTable, number>> = {};
    for (const [table, cutoff] of Object.entries(cutoffs) as [RetainedTable, Date][])
      deleted[table] = await deleteOlderThan(this.deps.db, table, cutoff);
    // Pruned config versions leave their segments behind; unreferenced ones go here, not per build.
    const segments = (await this.deps.sweepSegments?.()) ?? 0;
    if (Object.values(deleted).some((n) => n > 0) || segments > 0)
      this.deps.logger.info({ deleted, segments, cutoffs }, 'retention: old rows deleted');
    return deleted;
  }
}
