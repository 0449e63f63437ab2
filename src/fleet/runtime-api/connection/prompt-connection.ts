import type net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { connectSocket, describeEndpoint, type RuntimeEndpoint } from './runtime-endpoint.js';
import { PromptFramer } from './prompt-framer.js';

/** One request waiting for its reply on a pipelined connection. */
export interface PendingReply {
  /** The bytes to write (a command line, its payload and terminating empty line). */
  readonly text: string;
  onReply(reply: string): void;
  /** No reply will come. `atHead`: it was the command HAProxy was working on (its outcome is unknown). */
  onFail(reason: string, atHead: boolean): void;
}

/**
 * One interactive CLI session: writes requests as they come (pipelining), hands each reply to
 * the oldest waiting request, and fails every waiting request at once when anything goes wrong
 * (socket error, close, a reply nobody waits for, a reply that takes longer than `replyTimeoutMs`).
 */
export class PromptConnection {
  private readonly framer = new PromptFramer();
  private readonly decoder = new StringDecoder('utf8');
  private queue: (PendingReply | undefined)[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;
  private dead: string | null = null;
  /** When the connection last sent or received anything; an idle HAProxy CLI closes after `stats timeout`. */
  lastActivity = Date.now();

  private constructor(
    private readonly socket: net.Socket,
    private replyTimeoutMs: number,
    readonly name: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.fail(`connection to ${name} failed: ${error.message}`));
    socket.on('close', () => this.fail(`connection to ${name} closed before a reply`));
  }

  /** Connects and switches the session to prompt mode; rejects after `timeoutMs` at most. */
  static async open(endpoint: RuntimeEndpoint, timeoutMs: number, replyTimeoutMs: number): Promise<PromptConnection> {
    const started = Date.now();
    const socket = await connectSocket(endpoint, timeoutMs);
    const connection = new PromptConnection(
      socket,
      Math.max(1, Math.min(replyTimeoutMs, timeoutMs - (Date.now() - started))),
      describeEndpoint(endpoint),
    );
    await new Promise<void>((resolve, reject) => {
      connection.send([
        {
          text: 'prompt\n',
          // The first prompt follows an empty reply; a master socket would answer "master> " instead.
          onReply: (reply) =>
            reply === ''
              ? resolve()
              : reject(
                  new Error(
                    `${connection.name} is not a worker CLI in prompt mode: ${JSON.stringify(reply.slice(0, 80))}`,
                  ),
                ),
          onFail: (reason) => reject(new Error(reason)),
        },
      ]);
    }).catch((error: unknown) => {
      connection.close();
      throw error;
    });
    connection.replyTimeoutMs = replyTimeoutMs;
    return connection;
  }

  get alive(): boolean {
    return this.dead === null;
  }

  get busy(): boolean {
    return this.head < this.queue.length;
  }

  /** Writes the requests in one go; their replies arrive in the same order. */
  send(requests: readonly PendingReply[]): void {
    if (this.dead !== null) {
      for (const r of requests) r.onFail(this.dead, false);
      return;
    }
    this.queue.push(...requests);
    this.lastActivity = Date.now();
    this.armTimer(false);
    this.socket.ref();
    this.socket.write(requests.map((r) => r.text).join(''));
  }

  /** Ends the session; whatever still waits is failed with `reason`. */
  close(reason = `connection to ${this.name} closed by the client`): void {
    this.fail(reason);
  }

  /** Fails everything waiting; `headTimedOut` marks the request HAProxy was on as timed out. */
  fail(reason: string, headTimedOut = false): void {
    if (this.dead !== null) return;
    this.dead = reason;
    if (this.timer !== null) clearTimeout(this.timer);
    const waiting = this.queue.slice(this.head) as PendingReply[];
    this.queue = [];
    this.head = 0;
    this.socket.destroy();
    waiting.forEach((r, i) => {
      r.onFail(reason, headTimedOut && i === 0);
    });
  }

  private receive(chunk: Buffer): void {
    this.lastActivity = Date.now();
    const replies = this.framer.push(this.decoder.write(chunk));
    for (const reply of replies) {
      const request = this.queue[this.head];
      if (request === undefined) {
        this.fail(`unexpected reply from ${this.name} with nothing pending: ${JSON.stringify(reply.slice(0, 80))}`);
        return;
      }
      this.queue[this.head] = undefined; // let the settled request be collected
      this.head += 1;
      request.onReply(reply);
      if (this.dead !== null) return; // a callback closed the connection
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    // The timer measures each reply, not progress within one: restart it only when one completed.
    if (replies.length > 0) this.armTimer(true);
  }

  /** One timer for the request at the head of the line, restarted (`restart`) when a reply completes. */
  private armTimer(restart: boolean): void {
    if (!this.busy) {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      this.socket.unref(); // an idle session must not keep a CLI process from exiting
      return;
    }
    if (this.timer === null) {
      this.timer = setTimeout(
        () => this.fail(`no reply from ${this.name} within ${this.replyTimeoutMs} ms`, true),
        this.replyTimeoutMs,
      );
    } else if (restart) {
      this.timer.refresh();
    }
  }
}
