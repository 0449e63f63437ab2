import { runtimeCommand, UnsafeArgumentError, type RuntimeCommand } from './runtime-command.js';

/** Commands of the master CLI (`haproxy -W -S <socket>`): processes, reloads, and worker commands passed through. */

/**
 * A worker command sent through the master CLI to one worker (`@!<pid> <command>`), for nodes
 * where the master socket is the only CLI the agent is given. Naming the PID, not `@1`, makes
 * sure the command reaches the current worker and not one finishing its connections after a reload.
 */
export function onWorker(pid: number, command: RuntimeCommand): RuntimeCommand {
  if (!Number.isInteger(pid) || pid < 1 || pid > 4_194_304) throw new UnsafeArgumentError('pid', pid, 'a process id');
  if (command.target !== 'worker') throw new UnsafeArgumentError('command', command.line, 'a worker command');
  if (command.payload !== null) throw new UnsafeArgumentError('command', command.line, 'a command without payload');
  return Object.freeze({
    ...command,
    target: 'master',
    line: `@!${pid} ${command.line}`,
    description: `${command.description} (worker ${pid})`,
  });
}

export function showProc(): RuntimeCommand {
  return runtimeCommand('show-proc', 'show proc', 'list the master and worker processes', null, 'master');
}

/** Master `reload`: in 2.6 it prints nothing and drops the connection; `show proc` tells whether it failed. */
export function reload(): RuntimeCommand {
  return runtimeCommand('reload', 'reload', 'reload the configuration', null, 'master');
}
