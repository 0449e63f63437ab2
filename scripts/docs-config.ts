import { readFileSync, writeFileSync } from 'node:fs';
import { configTable, withConfigTable } from './config-table.js';

/**
 * `npm run docs:config` rewrites the environment table in docs/configuration.md from src/config.ts;
 * with `--check` it changes nothing and exits 1 when the file is not up to date (for CI).
 */
const path = new URL('../docs/configuration.md', import.meta.url);
const doc = readFileSync(path, 'utf8');
const next = withConfigTable(doc, configTable());
if (process.argv.includes('--check')) {
  if (next !== doc) {
    process.stderr.write('docs/configuration.md is out of date: run npm run docs:config\n');
    process.exitCode = 1;
  }
} else if (next !== doc) {
  writeFileSync(path, next);
  process.stdout.write('docs/configuration.md: environment table rewritten\n');
} else {
  process.stdout.write('docs/configuration.md: environment table already up to date\n');
}
