import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { VERSION } from '../version.js';

/** What `GET /v1/status` answers about the replica that serves it. */
export interface ReplicaView {
  /** `host:pid:nonce`: finds the process, and stays unique when two replicas share a host (or a test process). */
  readonly replica: string;
  readonly leader: boolean;
  /** When this replica took the leader lock; null while it stands by. */
  readonly leaderSince: string | null;
  readonly version: string;
}

/**
 * This control-plane replica's identity and whether it leads, as the leader elector last said.
 * It holds no lock itself: main.ts feeds it from LeaderElector's `elected` and `deposed`.
 */
export class ReplicaStatus {
  private since: Date | null = null;

  constructor(
    readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
    private readonly version = VERSION,
  ) {}

  get leader(): boolean {
    return this.since !== null;
  }

  setLeader(leading: boolean, at = new Date()): void {
    if (leading === this.leader) return;
    this.since = leading ? at : null;
  }

  view(): ReplicaView {
    return {
      replica: this.id,
      leader: this.leader,
      leaderSince: this.since?.toISOString() ?? null,
      version: this.version,
    };
  }
}
