import * as arg from './argument-guards.js';
import { runtimeCommand, type RuntimeCommand } from './runtime-command.js';

export function setFrontendMaxconn(frontend: string, maxconn: number): RuntimeCommand {
  const fe = arg.name('frontend', frontend);
  return runtimeCommand(
    'set-frontend-maxconn',
    `set maxconn frontend ${fe} ${arg.int('maxconn', maxconn, 0, arg.MAX_INT)}`,
    `cap frontend ${fe} at ${maxconn} connections`,
  );
}
