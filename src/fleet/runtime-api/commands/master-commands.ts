import { UnsafeArgumentError, type RuntimeCommand } from './runtime-command.js';

/**
 * A worker command sent through the master CLI to one worker (`@!<pid> <command>`), for nodes
 * where the master socket is the only CLI the agent is given. Naming the PID, not `@1`, makes
 * sure the command reaches the current worker and not one finishing its connections after a reload.
 */
export function onWorker(pid: number, command: RuntimeCommand): RuntimeCommand {
  if (!Number.isInteger(pid) || pid < 1 || pid > 4_194_304) throw new UnsafeArgumentError('pid', pid, 'a process id');
  if (command.target !== 'worker') throw new UnsafeArgumentError('command', command.line, 'a worker command');
  if (command.payload !== null) throw new UnsafeArgumentError('command', command.line, 'a command without payload');
  return Object.freeze({ ...command, target: 'master', line: `@!${pid} ${command.line}`, description: `${command.description} (worker ${pid})` });
}
