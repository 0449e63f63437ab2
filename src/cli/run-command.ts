import { ApiError, ClientConfigError } from './api-client.js';
import type { Output } from './apply-reporter.js';
import { EXIT, type ExitCode } from './exit-codes.js';

/** A mistake in how the command was called (arguments, flags): exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Runs a client command and turns what it throws into the documented exit code and one line on
 * stderr; anything unexpected is a failure of ours or the server's (3), never a silent 0.
 */
export async function runCommand(out: Output, command: () => Promise<ExitCode>): Promise<ExitCode> {
  try {
    return await command();
  } catch (err) {
    out.stderr.write(`switchyard: ${(err as Error).message ?? String(err)}\n`);
    if (err instanceof ApiError) return err.exitCode;
    if (err instanceof ClientConfigError || err instanceof UsageError) return EXIT.invalidInput;
    return EXIT.serverError;
  }
}
