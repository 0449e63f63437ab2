import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../src/db/connect.js';
import { migrateToLatest } from '../src/db/migrate.js';

/**
 * One migrated template database per test run of each project that needs PostgreSQL (api,
 * integration; the unit project has no global setup); each test file clones it (CREATE DATABASE …
 * TEMPLATE, a few hundred ms) so files never see each other's rows. Everything is dropped at the end.
 */
export const ADMIN_URL = process.env.SWITCHYARD_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The project's name keeps two projects' templates apart: each runs this setup once.
  const prefix = `sy_test_${process.pid}_${project.name.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`;
  const template = `${prefix}_tpl`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `cannot reach PostgreSQL at ${ADMIN_URL} (${(err as Error).message}); start it (see .ci/run) or set SWITCHYARD_TEST_PG`,
    );
  }
  await admin.query(`create database ${template}`);
  const handle = await openDatabase({ url: withDatabase(ADMIN_URL, template), dataDir: '/nonexistent' });
  await migrateToLatest(handle.db);
  await handle.close();
  project.provide('testDatabase', { adminUrl: ADMIN_URL, template, prefix });

  return async () => {
    const { rows } = await admin.query<{ datname: string }>('select datname from pg_database where datname like $1', [
      `${prefix}%`,
    ]);
    for (const { datname } of rows) {
      await admin.query(`drop database if exists ${datname} with (force)`);
    }
    await admin.end();
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

declare module 'vitest' {
  export interface ProvidedContext {
    testDatabase: { adminUrl: string; template: string; prefix: string };
  }
}
