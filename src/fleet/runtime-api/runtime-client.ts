import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from '../../util/backoff.js';
import { describeEndpoint, type RuntimeEndpoint } from './connection/runtime-endpoint.js';
import { classifyReply } from './reply-verdict.js';
import { PromptConnection, type PendingReply } from './connection/prompt-connection.js';
import { stripPayloadPrompts } from './connection/prompt-framer.js';
import { assertSendable, encodeCommand, type RuntimeCommand } from './commands/runtime-command.js';
import type { CommandResult, ExecuteOptions, RuntimeExecutor } from './runtime-executor.js';

export interface RuntimeClientOptions {
  /** Longest wait for a TCP/unix connect plus the switch to prompt mode. */
  readonly connectTimeoutMs?: number;
  /** Longest wait for any one reply once its command is at the head of the line. */
  readonly commandTimeoutMs?: number;
  /** Longest an `execute` call may take, connecting included. */
  readonly batchTimeoutMs?: number;
  /**
   * Reconnect instead of reusing a connection idle this long. HAProxy closes an idle CLI session
   * after `stats timeout` (10 s by default); writing into one it is closing loses the batch.
   */
  readonly idleTimeoutMs?: number;
  /** Connect attempts within one `execute` call before its commands are reported not executed. */
  readonly connectAttempts?: number;
  readonly backoff?: Partial<BackoffPolicy>;
}

/** Commands per socket write of a large batch. */
const WRITE_SLICE = 256;

/** Reloads in a row that a batch rides out before its commands are reported not executed. */
const MAX_STOPPING_RETRIES = 3;

const DEFAULTS = {
  connectTimeoutMs: 2_000,
  commandTimeoutMs: 5_000,
  batchTimeoutMs: 30_000,
  idleTimeoutMs: 8_000,
  connectAttempts: 3,
} as const;

/**
 * The HAProxy Runtime API over one long-lived interactive connection per node. A batch is written
 * in one go and the replies are read as they stream back (pipelining: ~100k+ commands/s here,
 * against ~2k/s with a connection per command). Every command gets a result; `execute` never
 * rejects and never hangs past its timeout. Connect failures back off exponentially (capped),
 * across calls, so a dead node is not hammered. Each batch is preceded by a pipelined `show info`
 * so that a session left with an old worker after a reload is noticed and the batch re-sent.
 */
export class RuntimeClient implements RuntimeExecutor {
  private readonly options: Required<Omit<RuntimeClientOptions, 'backoff'>>;
  private readonly backoff: BackoffPolicy;
  private connection: PromptConnection | null = null;
  private opening: Promise<PromptConnection> | null = null;
  private failures = 0;
  private retryAt = 0;
  private lastError = '';
  private closed = false;
  private readonly sleepers = new Set<() => void>();

  constructor(
    readonly endpoint: RuntimeEndpoint,
    options: RuntimeClientOptions = {},
  ) {
    const { backoff = {}, ...rest } = options;
    this.options = { ...DEFAULTS, ...stripUndefined(rest) };
    this.backoff = { ...DEFAULT_BACKOFF, ...stripUndefined(backoff) };
  }

  async execute(commands: readonly RuntimeCommand[], options: ExecuteOptions = {}): Promise<CommandResult[]> {
    try {
      return await this.executeBatch(commands, options);
    } catch (error) {
      // Not expected to happen; the promise still resolves with a result per command.
      const message = `runtime client failure: ${error instanceof Error ? error.message : String(error)}`;
      return commands.map((command) => ({ status: 'not-executed', command, message }));
    }
  }

  private async executeBatch(commands: readonly RuntimeCommand[], options: ExecuteOptions): Promise<CommandResult[]> {
    const refused = refuseUnsendable(commands);
    if (refused !== null) return refused;
    if (commands.length === 0) return [];
    const deadline = Date.now() + (options.timeoutMs ?? this.options.batchTimeoutMs);
    for (let tries = 1; ; tries++) {
      const connection = await this.acquire(deadline);
      if (typeof connection === 'string')
        return commands.map((command) => ({ status: 'not-executed', command, message: connection }));
      const { results, stopping } = await this.run(connection, commands, deadline);
      if (!stopping) return results;
      // A session opened before a reload stays with the old worker, which accepts every command
      // and forgets it when it exits. What it did there is moot: send the batch to the new worker.
      connection.close('the worker is stopping after a reload');
      if (tries >= MAX_STOPPING_RETRIES || Date.now() >= deadline) {
        return commands.map((command) => ({
          status: 'not-executed',
          command,
          message: 'only reached a worker that is stopping after a reload',
        }));
      }
    }
  }

  warm(): void {
    if (this.closed || this.opening !== null || Date.now() < this.retryAt) return;
    const current = this.connection;
    if (current !== null && fresh(current, this.options.idleTimeoutMs / 2)) return;
    // A connection past half its idle time is replaced now rather than in the batch's way later.
    if (current !== null) {
      current.close('connection idle; reopened ahead of a batch');
      this.connection = null;
    }
    void this.acquire(Date.now() + this.options.connectTimeoutMs);
  }

  /** Closes the connection; commands still waiting are reported not executed. Later calls fail fast. */
  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.sleepers) wake();
    const opening = this.opening;
    this.connection?.close('client closed');
    this.connection = null;
    if (opening !== null)
      await opening.then(
        (c) => c.close('client closed'),
        () => undefined,
      );
  }

  /**
   * Sends `show info` then the batch, pipelined: the probe costs no round trip and tells whether
   * the session still talks to a live worker or to one that is stopping after a reload.
   */
  private run(
    connection: PromptConnection,
    commands: readonly RuntimeCommand[],
    deadline: number,
  ): Promise<{ results: CommandResult[]; stopping: boolean }> {
    return new Promise((resolve) => {
      const batch: Batch = {
        results: new Array(commands.length),
        outstanding: commands.length,
        stopping: false,
        done: () => {
          clearTimeout(timer);
          resolve({ results: batch.results, stopping: batch.stopping });
        },
      };
      const budget = Math.max(0, deadline - Date.now());
      const timer = setTimeout(
        () => connection.fail(`batch did not finish within its timeout (${budget} ms left when sent)`, true),
        budget,
      );
      const probe: PendingReply = {
        text: 'show info\n',
        onReply: (reply) => (batch.stopping = /^Stopping: 1$/m.test(reply)),
        onFail: () => undefined,
      };
      connection.send([probe]);
      // Written a slice at a time: HAProxy starts on the first commands while the rest are framed.
      for (let from = 0; from < commands.length; from += WRITE_SLICE) {
        const slice: PendingReply[] = [];
        for (let i = from; i < Math.min(commands.length, from + WRITE_SLICE); i++)
          slice.push(new CommandReply(batch, i, commands[i]!));
        connection.send(slice);
      }
    });
  }

  /** A live connection, or why there is none before the deadline. */
  private async acquire(deadline: number): Promise<PromptConnection | string> {
    for (let attempts = 0; ; ) {
      if (this.closed) return 'runtime client is closed';
      const current = this.connection;
      if (current !== null && fresh(current, this.options.idleTimeoutMs)) return current;
      if (current !== null) {
        current.close('connection idle too long; reopened');
        this.connection = null;
      }
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        if (Date.now() + wait >= deadline)
          return `${describeEndpoint(this.endpoint)} unreachable (${this.lastError}); next attempt in ${wait} ms`;
        await this.sleep(wait);
        continue;
      }
      try {
        attempts += 1;
        return await this.open(deadline);
      } catch {
        if (attempts >= this.options.connectAttempts || Date.now() >= deadline) {
          return `cannot connect to ${describeEndpoint(this.endpoint)}: ${this.lastError}`;
        }
      }
    }
  }

  /** One connect shared by concurrent callers; its outcome drives the backoff. */
  private open(deadline: number): Promise<PromptConnection> {
    this.opening ??= (async () => {
      try {
        const timeout = Math.max(1, Math.min(this.options.connectTimeoutMs, deadline - Date.now()));
        const connection = await PromptConnection.open(this.endpoint, timeout, this.options.commandTimeoutMs);
        this.failures = 0;
        this.retryAt = 0;
        if (this.closed) connection.close('client closed');
        else this.connection = connection;
        return connection;
      } catch (error) {
        this.failures += 1;
        this.lastError = error instanceof Error ? error.message : String(error);
        this.retryAt = Date.now() + backoffDelay(this.backoff, this.failures);
        throw error;
      } finally {
        this.opening = null;
      }
    })();
    return this.opening;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}

/** Whether a connection can take a batch: alive, and busy or idle for less than `maxIdleMs`. */
function fresh(connection: PromptConnection, maxIdleMs: number): boolean {
  return connection.alive && (connection.busy || Date.now() - connection.lastActivity < maxIdleMs);
}

/** The replies of one `execute` call still to come, and where they go. */
interface Batch {
  readonly results: CommandResult[];
  outstanding: number;
  stopping: boolean;
  done(): void;
}

/**
 * One command waiting for its reply. A class rather than closures: a 10,000-command batch makes
 * 10,000 of them, and methods cost nothing per instance.
 */
class CommandReply implements PendingReply {
  readonly text: string;

  constructor(
    private readonly batch: Batch,
    private readonly index: number,
    private readonly command: RuntimeCommand,
  ) {
    this.text = encodeCommand(command);
  }

  onReply(reply: string): void {
    const { command } = this;
    const payloadLines = command.payload === null ? 0 : command.payload.split('\n').length;
    const verdict = classifyReply(command.kind, payloadLines > 0 ? stripPayloadPrompts(reply, payloadLines) : reply);
    this.settle(
      verdict.ok
        ? { status: 'ok', command, output: verdict.output }
        : { status: 'error', command, message: verdict.message },
    );
  }

  onFail(reason: string, atHead: boolean): void {
    const { command } = this;
    this.settle(
      atHead
        ? { status: 'error', command, message: `${reason}; the command may or may not have been applied` }
        : { status: 'not-executed', command, message: reason },
    );
  }

  private settle(result: CommandResult): void {
    this.batch.results[this.index] = result;
    this.batch.outstanding -= 1;
    if (this.batch.outstanding === 0) this.batch.done();
  }
}

/** Checks the whole batch before anything is written: one bad command and nothing is sent. */
function refuseUnsendable(commands: readonly RuntimeCommand[]): CommandResult[] | null {
  // The usual batch is all sendable: one pass, no per-command array.
  const first = commands.findIndex((command) => problemOf(command) !== null);
  if (first < 0) return null;
  return commands.map((command): CommandResult => {
    const problem = problemOf(command);
    return problem !== null
      ? { status: 'error', command, message: problem }
      : { status: 'not-executed', command, message: `batch refused before sending: command ${first + 1} is unsafe` };
  });
}

/** Why this client cannot send `command`, or null when it can. */
function problemOf(command: RuntimeCommand): string | null {
  if (command.target !== 'worker') return `${command.line} is a master CLI command`;
  try {
    assertSendable(command);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
