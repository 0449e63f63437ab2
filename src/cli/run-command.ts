import { ConfigError } from '../config.js';
import { ConfigDirLockedError } from '../fleet/agent/config-dir-lock.js';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import { ApiError, ClientConfigError } from './api-client.js';
import type { Output } from './apply-reporter.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { UsageError } from './usage-error.js';

/**
 * Runs a client command and turns what it throws into the documented exit code and one line on
 * stderr; anything unexpected is a failure of ours or the server's (3), never a silent 0.
 */
export async function runCommand(out: Output, command: () => Promise<ExitCode>): Promise<ExitCode> {
  try {
    return await command();
  } catch (err) {
    out.stderr.write(`switchyard: ${(err as Error).message ?? String(err)}\n`);
    return exitCodeFor(err);
  }
}

/**
 * The exit code for an error a command threw, for every command: the API's answer decides for
 * API errors; input the caller can fix (flags, environment, configuration, a name that does not
 * exist, a value the domain refuses) is 1; anything else is a failure of ours or the server's (3).
 */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof ApiError) return err.exitCode;
  if (err instanceof UsageError || err instanceof ClientConfigError || err instanceof ConfigError)
    return EXIT.invalidInput;
  // Another agent runs on the --config-dir given: the argument is what to change.
  if (err instanceof ConfigDirLockedError) return EXIT.invalidInput;
  if (err instanceof NotFoundError || err instanceof ValidationError) return EXIT.invalidInput;
  return EXIT.serverError;
}
