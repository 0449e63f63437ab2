import { Agent, type AgentOptions } from '../fleet/agent/agent.js';
import { AgentStore } from '../fleet/agent/agent-store.js';
import { ControlPlaneClient } from '../fleet/agent/control-plane-client.js';
import { HaproxyReloader } from '../fleet/agent/reload/haproxy-reloader.js';
import { KeepalivedProcess } from '../fleet/agent/keepalived-control.js';
import { NginxReloader } from '../fleet/agent/reload/nginx-reloader.js';
import { createProxyValidator } from './proxy-validators.js';
import { proxyVersion } from '../fleet/agent/proxy-version.js';
import type { Logger } from '../logger.js';
import { VERSION } from '../version.js';
import type { AgentCliOptions } from './agent.js';

/** The composition of one agent; tests pass `tuning` to retry faster than a fleet should. */
export function buildAgent(
  options: AgentCliOptions,
  logger: Logger,
  tuning: Pick<AgentOptions, 'retry' | 'slowRetryMs' | 'retryRejectedMs'> = {},
): Agent {
  const bin = options.kind === 'haproxy' ? options.haproxyBin : options.nginxBin;
  const reloadTimeoutMs = options.reloadTimeoutSeconds * 1000;
  return new Agent(
    {
      node: options.node,
      kind: options.kind,
      configDir: options.configDir,
      waitSeconds: options.waitSeconds,
      heartbeatSeconds: options.heartbeatSeconds,
      keepReleases: options.keepReleases,
      ...tuning,
    },
    {
      client: new ControlPlaneClient({
        urls: options.controlPlanes,
        node: options.node,
        token: options.token,
        agentVersion: VERSION,
        onFailover: ({ from, to, error }) =>
          logger.warn({ from, to, error: error.message }, 'control-plane replica failed; trying the next one'),
      }),
      store: new AgentStore(options.configDir, logger),
      validator: createProxyValidator(options.kind, { haproxyBin: options.haproxyBin, nginxBin: options.nginxBin }),
      reloader:
        options.kind === 'haproxy'
          ? new HaproxyReloader({ masterSocket: options.masterSocket, reloadTimeoutMs }, logger)
          : new NginxReloader({ configDir: options.configDir, reloadTimeoutMs }, logger),
      keepalived: new KeepalivedProcess(
        { bin: options.keepalivedBin, pidFile: options.keepalivedPidFile, namespace: options.keepalivedNamespace },
        logger,
      ),
      logger,
      agentVersion: VERSION,
      proxyVersion: () => proxyVersion(bin),
    },
  );
}
