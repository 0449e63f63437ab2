import { Command } from 'commander';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { NODE_KINDS, type NodeKind } from '../domain/node.js';
import { registerAgentCommand } from './agent.js';
import { registerApplyCommand } from './apply.js';
import { registerDeleteCommand } from './delete.js';
import { EXIT } from './exit-codes.js';
import { registerGetCommand } from './get.js';
import { renderCommand } from './render.js';
import { exitCodeFor } from './run-command.js';
import { UsageError } from './usage-error.js';

/** Exit codes CI can rely on. */
export { EXIT };

/**
 * The server stack (database, express, renderers) loads only for the commands that run it, so
 * the API client commands (apply, get, delete) a CI job calls start in a fraction of the time.
 */
const loadServer = () => import('../main.js');

const program = new Command()
  .name('switchyard')
  .description('Multi-tenant load-balancer control plane for HAProxy and NGINX fleets')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the control plane (REST API); applies pending migrations first')
  .action(async () => {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    const { startControlPlane } = await loadServer();
    const cp = await startControlPlane(config, logger);
    if (cp.adminTokenFile) {
      // Only where it is: standard output and error end up in journald and CI logs.
      logger.info({ file: cp.adminTokenFile }, 'generated an admin token');
      process.stderr.write(
        `\nGenerated an admin token and saved it in ${cp.adminTokenFile} (mode 0600, readable by this user only).\n` +
          `Try: TOKEN=$(cat ${cp.adminTokenFile}); curl -H "Authorization: Bearer $TOKEN" ${cp.url}/v1/tenants\n\n`,
      );
    }
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      cp.stop().then(
        () => process.exit(EXIT.ok),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(EXIT.serverError);
        },
      );
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit (safe to run from several replicas at once)')
  .action(async () => {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    const { openAndMigrate } = await loadServer();
    const database = await openAndMigrate(config, logger);
    await database.close();
  });

program
  .command('render')
  .description(
    "write rendered proxy configuration from the database: a node's files (--node) or every active tenant for a --kind",
  )
  .option('--kind <kind>', `proxy kind: ${NODE_KINDS.join(' or ')}`)
  .option('--node <name>', 'render exactly what this node runs (and store the version)')
  .option('--config-dir <dir>', 'without --node: the directory the files will live in on the node', '/etc/switchyard')
  .requiredOption('--out <dir>', 'where to write the files')
  .action(async (opts: { kind?: string; node?: string; out: string; configDir: string }) => {
    if (opts.kind !== undefined && !(NODE_KINDS as readonly string[]).includes(opts.kind)) {
      throw new UsageError(`--kind must be one of ${NODE_KINDS.join(', ')}`);
    }
    const config = loadConfig();
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    const { openCore } = await loadServer();
    const core = await openCore(config, logger);
    try {
      const result = await renderCommand(core.services, { ...opts, kind: opts.kind as NodeKind | undefined });
      process.stdout.write(`wrote ${result.written.length} files for revision ${result.revision} to ${opts.out}\n`);
      for (const h of result.held) {
        process.stderr.write(
          `held tenant ${h.tenant} (${h.servingRevision === null ? 'left out' : `serving revision ${h.servingRevision}`}): ${h.error}\n`,
        );
      }
      process.exitCode = result.held.length > 0 ? EXIT.conflict : EXIT.ok;
    } finally {
      await core.close();
    }
  });

registerAgentCommand(program);
registerApplyCommand(program);
registerGetCommand(program);
registerDeleteCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`switchyard: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(exitCodeFor(err));
});
