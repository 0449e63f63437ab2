import { assertSendable, type RuntimeCommand } from './commands/runtime-command.js';
import type { CommandResult, ExecuteOptions, RuntimeExecutor } from './runtime-executor.js';

/**
 * Sends a batch after checking each command on its own: the client refuses a whole batch for one
 * unsendable command (say, a certificate payload over the CLI buffer), and a reconciler must not
 * let one tenant's oversized certificate hold back everyone's weights. The refused ones fail alone.
 */
export async function executeSendable(
  executor: RuntimeExecutor,
  commands: readonly RuntimeCommand[],
  options?: ExecuteOptions,
): Promise<CommandResult[]> {
  const refused = new Map<number, string>();
  commands.forEach((command, i) => {
    try {
      assertSendable(command);
    } catch (error) {
      refused.set(i, error instanceof Error ? error.message : String(error));
    }
  });
  if (refused.size === 0) return executor.execute(commands, options);
  const sent = await executor.execute(
    commands.filter((_, i) => !refused.has(i)),
    options,
  );
  let next = 0;
  return commands.map((command, i): CommandResult => {
    const message = refused.get(i);
    return message === undefined ? sent[next++]! : { status: 'error', command, message };
  });
}
