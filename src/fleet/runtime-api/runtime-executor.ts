import { UpstreamError } from '../../domain/errors.js';
import type { RuntimeCommand } from './commands/runtime-command.js';

/**
 * The outcome of one command. `not-executed` means no reply came back (the connection failed
 * first, or the command was never sent); HAProxy may still have applied a command that was
 * written, so only idempotent commands should be retried blindly.
 */
export type CommandResult =
  | { readonly status: 'ok'; readonly command: RuntimeCommand; readonly output: string }
  | { readonly status: 'error'; readonly command: RuntimeCommand; readonly message: string }
  | { readonly status: 'not-executed'; readonly command: RuntimeCommand; readonly message: string };

export interface ExecuteOptions {
  /** Overrides the client's batch timeout for this call. */
  readonly timeoutMs?: number;
}

/** The port services use to send commands: one result per command, in order; never rejects. */
export interface RuntimeExecutor {
  execute(commands: readonly RuntimeCommand[], options?: ExecuteOptions): Promise<CommandResult[]>;
  /**
   * Opens, without waiting, the connections a large batch would use and that are closed or about
   * to be reopened for idleness: called while a caller prepares what may be one, so the batch
   * does not pay for the connect. Optional; does nothing while connects are backing off.
   */
  warm?(): void;
}

/** A command that did not succeed, for callers that want one result or an exception. */
export class RuntimeCommandError extends UpstreamError {
  constructor(
    readonly result: Exclude<CommandResult, { status: 'ok' }>,
    options?: { cause?: unknown },
  ) {
    super(
      `${result.command.description} (${result.command.line}): ${result.status === 'error' ? '' : 'not executed: '}${result.message}`,
      options,
    );
  }
}
