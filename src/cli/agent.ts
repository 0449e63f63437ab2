import { isAbsolute } from 'node:path';
import type { Command } from 'commander';
import { configDir as configDirSchema, NODE_KINDS, type NodeKind } from '../domain/node.js';
import { slug } from '../domain/fields.js';
import type { OnceResult } from '../fleet/agent/agent.js';
import { createLogger } from '../logger.js';
import { VERSION } from '../version.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { UsageError } from './usage-error.js';

export interface AgentCliOptions {
  /** Every control-plane replica, in the order given; the agent fails over between them. */
  readonly controlPlanes: readonly string[];
  readonly node: string;
  readonly kind: NodeKind;
  readonly configDir: string;
  readonly token: string;
  readonly masterSocket: string;
  readonly haproxyBin: string;
  readonly nginxBin: string;
  readonly keepalivedBin: string;
  readonly keepalivedPidFile: string;
  /** The network namespace keepalived runs in (validation looks there), or null. */
  readonly keepalivedNamespace: string | null;
  readonly waitSeconds: number;
  readonly heartbeatSeconds: number;
  readonly reloadTimeoutSeconds: number;
  readonly keepReleases: number;
  readonly once: boolean;
}

/** The flags as commander hands them over (strings). */
export interface AgentFlags {
  /** One URL, a comma-separated list, or (the flag repeated) several of either. */
  controlPlane: string | readonly string[];
  node: string;
  kind: string;
  configDir: string;
  token?: string;
  masterSocket: string;
  haproxyBin: string;
  nginxBin: string;
  keepalivedBin?: string;
  keepalivedPidFile?: string;
  keepalivedNamespace?: string;
  wait: string;
  heartbeat: string;
  reloadTimeout: string;
  keepReleases: string;
  once?: boolean;
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description("run beside a node's HAProxy or NGINX: fetch its config, validate, swap in atomically, reload, report")
    .requiredOption(
      '--control-plane <url>',
      'control plane base URL, e.g. https://switchyard.internal:8080; repeat it (or separate with commas) to list every replica, and the agent fails over between them',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .requiredOption('--node <name>', 'the node this agent runs on, as registered (POST /v1/nodes)')
    .requiredOption('--kind <kind>', `proxy kind: ${NODE_KINDS.join(' or ')}`)
    .option(
      '--config-dir <dir>',
      "the node's configDir: a symlink the agent manages, releases beside it in <dir>.releases",
      '/etc/switchyard',
    )
    .option(
      '--token <token>',
      "the node's agent token; prefer the SWITCHYARD_AGENT_TOKEN environment variable (not visible in ps)",
    )
    .option(
      '--master-socket <path>',
      'HAProxy master CLI socket (haproxy -W -S <path> ...)',
      '/run/switchyard/master.sock',
    )
    .option('--haproxy-bin <path>', 'haproxy binary, for haproxy -c and the version', 'haproxy')
    .option('--nginx-bin <path>', 'nginx binary, for nginx -t and the version', 'nginx')
    .option('--keepalived-bin <path>', 'keepalived binary, for keepalived -t on nodes with VRRP settings', 'keepalived')
    .option(
      '--keepalived-pid-file <path>',
      "keepalived's pid file (its -p): the agent sends SIGHUP there when keepalived.conf changes",
      '/run/keepalived.pid',
    )
    .option(
      '--keepalived-namespace <name>',
      'the network namespace keepalived runs in (keepalived -s NAME): keepalived -t checks interfaces there',
    )
    .option('--wait <seconds>', 'long-poll wait (1-120)', '30')
    .option('--heartbeat <seconds>', 'heartbeat interval', '10')
    .option('--reload-timeout <seconds>', 'how long a reload may take to show', '30')
    .option('--keep-releases <n>', 'old good releases kept for manual rollback', '5')
    .option(
      '--once',
      'apply the current config once and exit: 0 applied, 1 invalid arguments (or token, node, configDir), 2 rejected by the proxy, 3 control plane unreachable',
    )
    .action(async (raw: AgentFlags) => {
      const options = parseAgentOptions(raw, process.env);
      // Loaded here, so the other commands do not pay for the validators and renderers at start-up.
      const { buildAgent } = await import('./build-agent.js');
      const logger = createLogger(process.env.LOG_LEVEL || 'info').child({
        component: 'agent',
        node: options.node,
        kind: options.kind,
      });
      const agent = buildAgent(options, logger);
      if (options.once) {
        process.exitCode = onceExitCode(await agent.once());
        return;
      }
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'stopping the agent; the proxy keeps running');
        void agent.stop();
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
      logger.info(
        { controlPlanes: options.controlPlanes, configDir: options.configDir, version: VERSION },
        'switchyard agent started',
      );
      await agent.run();
      // Stopped cleanly; an idle keep-alive socket must not hold the process open.
      setTimeout(() => process.exit(process.exitCode ?? 0), 2_000).unref();
    });
}

/** Checks the flags; throws UsageError (exit 1) with what to fix. */
export function parseAgentOptions(raw: AgentFlags, env: NodeJS.ProcessEnv): AgentCliOptions {
  const controlPlanes = controlPlaneUrls(raw.controlPlane);
  if (!slug.safeParse(raw.node).success)
    throw new UsageError(`--node must be a node name (a slug), got ${JSON.stringify(raw.node)}`);
  if (!(NODE_KINDS as readonly string[]).includes(raw.kind))
    throw new UsageError(`--kind must be one of ${NODE_KINDS.join(', ')}`);
  const dir = configDirSchema.safeParse(raw.configDir);
  if (!dir.success || dir.data === '/')
    throw new UsageError('--config-dir must be an absolute directory of letters, digits and . _ / - (not /)');
  const token = env.SWITCHYARD_AGENT_TOKEN || raw.token;
  if (!token) throw new UsageError('give the agent token in SWITCHYARD_AGENT_TOKEN (or --token)');
  if (raw.kind === 'haproxy' && !isAbsolute(raw.masterSocket))
    throw new UsageError('--master-socket must be an absolute path');
  const keepalivedPidFile = raw.keepalivedPidFile ?? '/run/keepalived.pid';
  if (!isAbsolute(keepalivedPidFile)) throw new UsageError('--keepalived-pid-file must be an absolute path');
  const keepalivedNamespace = raw.keepalivedNamespace ?? null;
  if (keepalivedNamespace !== null && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(keepalivedNamespace)) {
    throw new UsageError(
      '--keepalived-namespace must be a network namespace name (letters, digits, _ . -), as `ip netns list` shows it',
    );
  }
  return {
    controlPlanes,
    node: raw.node,
    kind: raw.kind as NodeKind,
    configDir: dir.data,
    token,
    masterSocket: raw.masterSocket,
    haproxyBin: raw.haproxyBin,
    nginxBin: raw.nginxBin,
    keepalivedBin: raw.keepalivedBin ?? 'keepalived',
    keepalivedPidFile,
    keepalivedNamespace,
    waitSeconds: integer('--wait', raw.wait, 1, 120),
    heartbeatSeconds: integer('--heartbeat', raw.heartbeat, 1, 3600),
    reloadTimeoutSeconds: integer('--reload-timeout', raw.reloadTimeout, 1, 600),
    keepReleases: integer('--keep-releases', raw.keepReleases, 1, 100),
    once: raw.once === true,
  };
}

/** `switchyard agent --once`: 0 applied, 1 invalid input, 2 rejected by the proxy, 3 control plane unreachable. */
export function onceExitCode(result: OnceResult): ExitCode {
  switch (result.status) {
    case 'applied':
    case 'unchanged':
      return EXIT.ok;
    case 'rejected':
    case 'failed':
      return EXIT.conflict;
    case 'refused':
      return EXIT.invalidInput;
    case 'unreachable':
      return EXIT.serverError;
  }
}

/** `--control-plane`, given once or repeated, each a URL or a comma-separated list of them. */
function controlPlaneUrls(raw: string | readonly string[]): string[] {
  const given = (typeof raw === 'string' ? [raw] : raw).flatMap((v) => v.split(',')).map((v) => v.trim());
  if (given.length === 0) throw new UsageError('--control-plane needs at least one URL');
  const urls: string[] = [];
  for (const value of given) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new UsageError(
        `--control-plane must be an http(s) URL (or several, comma-separated), got ${JSON.stringify(value)}`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UsageError(`--control-plane must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
    const normalized = url.toString().replace(/\/+$/, '');
    if (urls.includes(normalized)) throw new UsageError(`--control-plane lists ${normalized} twice`);
    urls.push(normalized);
  }
  return urls;
}

function integer(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}`);
  return n;
}
