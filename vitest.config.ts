import { defineConfig } from 'vitest/config';

/**
 * Three projects, one per folder. Unit tests are hermetic: no PostgreSQL, no proxy or openssl
 * binaries, so `npm run test:unit` runs anywhere node does. API and integration tests share one
 * global setup that makes a migrated template database on the real PostgreSQL.
 */
const withPostgres = ['test/global-setup.ts'];
const LOAD_JUDGED = [
  'test/integration/fairness.test.ts',
  'test/integration/noisy-neighbour.test.ts',
  'test/integration/nginx-noisy-neighbour.test.ts',
];

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
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: LOAD_JUDGED,
          globalSetup: withPostgres,
        },
      },
      {
        // Tests that judge latency and queueing under load they generate themselves run last and
        // alone: beside a CPU-heavy file (the render properties run haproxy -c and nginx -t
        // thousands of times) a 2-core machine queues their clients, which is not the caps' doing.
        extends: true,
        test: {
          name: 'load',
          include: LOAD_JUDGED,
          globalSetup: withPostgres,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
