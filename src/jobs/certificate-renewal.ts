import type { Logger } from '../logger.js';
import type { FleetPki, RenewalOutcome } from '../services/fleet-pki.js';
import { every, type Scheduled } from './schedule.js';

/**
 * Renews the Runtime API certificates on the leader: once when it starts leading (which also
 * issues the certificates of nodes registered before the CA existed), then every interval. A
 * renewed node certificate bumps the revision: each node's config is rebuilt and the reconciler
 * swaps the certificate in live. `renewed` is told after each pass, so this replica loads a new
 * client certificate at once (the others within their refresh interval).
 */
export class CertificateRenewalJob {
  private schedule: Scheduled | null = null;
  private first: Promise<unknown> | null = null;

  constructor(
    private readonly deps: {
      readonly pki: Pick<FleetPki, 'renewDue'>;
      readonly logger: Logger;
      readonly renewed?: (outcome: RenewalOutcome) => Promise<void>;
    },
    /** Seconds between passes (cron-paced); hourly by default. Certificates are renewed with a third of their lifetime left. */
    private readonly intervalS = 3600,
  ) {}

  start(): void {
    if (this.schedule !== null) return;
    const failed = (err: unknown) =>
      this.deps.logger.warn(
        { err },
        'Runtime API certificate renewal failed; the next pass retries (certificates are renewed with a third of their lifetime left)',
      );
    const run = () => this.pass().then(() => undefined);
    this.schedule = every(this.intervalS, run, failed);
    this.first = run().catch(failed);
  }

  async stop(): Promise<void> {
    const schedule = this.schedule;
    this.schedule = null;
    await schedule?.stop();
    await this.first;
  }

  async pass(): Promise<RenewalOutcome> {
    const outcome = await this.deps.pki.renewDue();
    await this.deps.renewed?.(outcome);
    return outcome;
  }
}
