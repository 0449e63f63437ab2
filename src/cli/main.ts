import { Command } from 'commander';
import { loadConfig, ConfigError } from '../config.js';
import { createLogger } from '../logger.js';
import { openAndMigrate, startControlPlane } from '../main.js';

/** Exit codes CI can rely on. */
export const EXIT = { ok: 0, invalidInput: 1, conflict: 2, serverError: 3 } as const;

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
    const cp = await startControlPlane(config, logger);
    if (cp.generatedAdminToken) {
      const where = config.databaseUrl ? '' : ` (also saved in ${config.dataDir}/admin-token)`;
      process.stderr.write(
        `\nGenerated an admin token${where}. It is shown once:\n\n  ${cp.generatedAdminToken}\n\n` +
          `Try: curl -H "Authorization: Bearer $TOKEN" ${cp.url}/v1/tenants\n\n`,
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
    const database = await openAndMigrate(config, logger);
    await database.close();
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`switchyard: ${err.message}\n`);
    process.exit(EXIT.invalidInput);
  }
  process.stderr.write(`switchyard: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT.serverError);
});
