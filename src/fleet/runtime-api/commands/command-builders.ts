import type { CommandBuilders } from '../../../domain/runtime-plan.js';
import { setFrontendMaxconn } from './frontend-commands.js';
import { addMap, delMap, setMap } from './map-commands.js';
import type { RuntimeCommand } from './runtime-command.js';
import {
  addServer,
  delServer,
  enableHealth,
  enableServer,
  setServerAddr,
  setServerState,
  setServerWeight,
} from './server-commands.js';
import { commitSslCert, setSslCert } from './ssl-cert-commands.js';

/** The builders the domain's runtime planner formats with, so every argument it plans goes through the same guards. */
export const commandBuilders: CommandBuilders<RuntimeCommand> = {
  setServerWeight,
  setServerAddr,
  setServerState,
  addServer,
  enableServer,
  enableHealth,
  delServer,
  setFrontendMaxconn,
  addMap,
  setMap,
  delMap,
  setSslCert,
  commitSslCert,
};
