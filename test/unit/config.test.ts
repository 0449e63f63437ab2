import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configTable, TABLE_END, TABLE_START, withConfigTable } from '../../scripts/config-table.js';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config.js';

const DOC = new URL('../../docs/configuration.md', import.meta.url);
const SRC = new URL('../../src/', import.meta.url).pathname;

/** The rows of docs/configuration.md's environment table: variable → who reads it. */
function documentedVariables(): Map<string, string> {
  const doc = readFileSync(DOC, 'utf8');
  const table = doc.slice(doc.indexOf(TABLE_START), doc.indexOf(TABLE_END));
  const rows = new Map<string, string>();
  for (const line of table.split('\n')) {
    const m = /^\| `([A-Z][A-Z0-9_]+)` \| ([^|]+) \|/.exec(line);
    if (m) rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

/** Every SWITCHYARD_* name in the source: what src/ reads from its environment or tells a user to set. */
function switchyardVariablesInSource(): Set<string> {
  const names = new Set<string>();
  for (const file of readdirSync(SRC, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue;
    for (const m of readFileSync(join(SRC, file), 'utf8').matchAll(/\bSWITCHYARD_[A-Z0-9_]+\b/g)) names.add(m[0]);
  }
  return names;
}

describe('configuration', () => {
  it('docs/configuration.md documents every variable the control plane reads, and no other', () => {
    const controlPlane = [...documentedVariables()]
      .filter(([, readBy]) => readBy.startsWith('control plane'))
      .map(([name]) => name);
    expect(controlPlane).toEqual([...CONFIG_VARIABLES]);
  });

  it('every SWITCHYARD_* variable src/ names has a row, and every row of the agent or the CLI is one src/ names', () => {
    const documented = documentedVariables();
    const inSource = switchyardVariablesInSource();
    expect([...inSource].filter((v) => !documented.has(v))).toEqual([]);
    const others = [...documented].filter(([, readBy]) => !readBy.startsWith('control plane')).map(([name]) => name);
    expect(others.length).toBeGreaterThan(0);
    expect(others.filter((v) => !inSource.has(v))).toEqual([]);
  });

  it('the table is what `npm run docs:config` generates from src/config.ts', () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(withConfigTable(doc, configTable()), 'docs/configuration.md is out of date: run npm run docs:config').toBe(
      doc,
    );
  });

  it('refuses a stats interval cron cannot keep an even pace for, naming the variable', () => {
    expect(() => loadConfig({ SWITCHYARD_STATS_INTERVAL_S: '7' })).toThrow(ConfigError);
    expect(() => loadConfig({ SWITCHYARD_STATS_INTERVAL_S: '7' })).toThrow(/SWITCHYARD_STATS_INTERVAL_S/);
    expect(loadConfig({ SWITCHYARD_STATS_INTERVAL_S: '5' }).stats.intervalS).toBe(5);
  });

  it('reads a supplied Runtime API CA from two PEM files, and refuses half of one or a missing file, naming the variable', () => {
    const cert = new URL('../fixtures/certs/runtime-ca.crt', import.meta.url).pathname;
    const key = new URL('../fixtures/certs/runtime-edge-1.key', import.meta.url).pathname;
    expect(loadConfig({}).runtimeTls).toEqual({ certificateDays: 30, suppliedCa: undefined });
    const supplied = loadConfig({ SWITCHYARD_RUNTIME_CA_CERT: cert, SWITCHYARD_RUNTIME_CA_KEY: key }).runtimeTls
      .suppliedCa;
    expect(supplied?.certificatePem).toContain('-----BEGIN CERTIFICATE-----');
    expect(supplied?.keyPem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(() => loadConfig({ SWITCHYARD_RUNTIME_CA_CERT: cert })).toThrow(
      /SWITCHYARD_RUNTIME_CA_CERT and SWITCHYARD_RUNTIME_CA_KEY go together/,
    );
    expect(() =>
      loadConfig({ SWITCHYARD_RUNTIME_CA_CERT: '/nonexistent/ca.pem', SWITCHYARD_RUNTIME_CA_KEY: key }),
    ).toThrow(/SWITCHYARD_RUNTIME_CA_CERT: cannot read \/nonexistent\/ca\.pem/);
    expect(() => loadConfig({ SWITCHYARD_RUNTIME_CA_CERT: key, SWITCHYARD_RUNTIME_CA_KEY: key })).toThrow(
      /holds no PEM CERTIFICATE/,
    );
    expect(() => loadConfig({ SWITCHYARD_RUNTIME_CERT_DAYS: '0' })).toThrow(/SWITCHYARD_RUNTIME_CERT_DAYS/);
  });
});
