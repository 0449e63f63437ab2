import { defineConfig } from 'vitest/config';

/**
 * Three projects, one per folder. Unit tests are hermetic: no PostgreSQL, no proxy or openssl
 * binaries, so `npm run test:unit` runs anywhere node does. API and integration tests share one
 * global setup that makes a migrated template database on the real PostgreSQL.
 */
const withPostgres = ['test/global-setup.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Two cores here: one worker per core keeps PostgreSQL and the proxies responsive.
    maxWorkers: 2,
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'api', include: ['test/api/**/*.test.ts'], globalSetup: withPostgres } },
      {
        extends: true,
        test: { name: 'integration', include: ['test/integration/**/*.test.ts'], globalSetup: withPostgres },
      },
    ],
  },
});
