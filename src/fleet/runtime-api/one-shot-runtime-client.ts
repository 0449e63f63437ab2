import { StringDecoder } from 'node:string_decoder';
import { connectSocket, describeEndpoint, type RuntimeEndpoint } from './connection/runtime-endpoint.js';
import { classifyReply } from './reply-verdict.js';
import { assertSendable, encodeCommand, type CliTarget, type RuntimeCommand } from './commands/runtime-command.js';
import type { CommandResult, ExecuteOptions, RuntimeExecutor } from './runtime-executor.js';

export interface OneShotRuntimeClientOptions {
  /** Which CLI the endpoint is: the master socket (`-S`) or a worker's stats socket. */
  readonly target?: CliTarget;
  readonly connectTimeoutMs?: number;
  /** Longest wait for one command's whole reply. */
  readonly commandTimeoutMs?: number;
}

/**
 * A connection per command, in HAProxy's non-interactive mode: write one command, read until
 * HAProxy closes. Slow (~2k commands/s) but right for the master CLI, whose `reload` drops the
 * connection anyway, and as the baseline the pipelined client is measured against.
 */
export class OneShotRuntimeClient implements RuntimeExecutor {
  private readonly target: CliTarget;
  private readonly connectTimeoutMs: number;
  private readonly commandTimeoutMs: number;

  constructor(
    readonly endpoint: RuntimeEndpoint,
    options: OneShotRuntimeClientOptions = {},
  ) {
    this.target = options.target ?? 'master';
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
  }

  /** Runs the commands one after another; after a connect failure the rest are not executed. */
  async execute(commands: readonly RuntimeCommand[], _options: ExecuteOptions = {}): Promise<CommandResult[]> {
    const results: CommandResult[] = [];
    for (const command of commands) {
      const previous = results.at(-1);
      if (previous?.status === 'not-executed') {
        results.push({ status: 'not-executed', command, message: previous.message });
        continue;
      }
      results.push(await this.executeOne(command));
    }
    return results;
  }

  private async executeOne(command: RuntimeCommand): Promise<CommandResult> {
    try {
      assertSendable(command);
      if (command.target !== this.target) throw new Error(`${command.line} is not a ${this.target} CLI command`);
    } catch (error) {
      return { status: 'error', command, message: (error as Error).message };
    }
    let reply: string;
    try {
      reply = await this.exchange(encodeCommand(command));
    } catch (error) {
      const message = (error as Error).message;
      return (error as { sent?: boolean }).sent
        ? { status: 'error', command, message: `${message}; the command may or may not have been applied` }
        : { status: 'not-executed', command, message };
    }
    const verdict = classifyReply(command.kind, reply.replace(/^(?:\+ )+/, ''));
    return verdict.ok
      ? { status: 'ok', command, output: verdict.output }
      : { status: 'error', command, message: verdict.message };
  }

  /** Sends the text and collects everything until the server closes; errors say whether it was sent. */
  private async exchange(text: string): Promise<string> {
    const socket = await connectSocket(this.endpoint, this.connectTimeoutMs);
    return new Promise((resolve, reject) => {
      const decoder = new StringDecoder('utf8');
      let reply = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          Object.assign(
            new Error(`no complete reply from ${describeEndpoint(this.endpoint)} within ${this.commandTimeoutMs} ms`),
            { sent: true },
          ),
        );
      }, this.commandTimeoutMs);
      socket.on('data', (chunk: Buffer) => (reply += decoder.write(chunk)));
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(Object.assign(error, { sent: true }));
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(reply + decoder.end());
      });
      // Half-close after the command: the master CLI (2.6) only closes once the client has.
      socket.end(text);
    });
  }
}
