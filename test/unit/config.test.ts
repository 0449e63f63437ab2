import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config.js';

/** The variables named in the first column of the README's configuration table. */
function documentedVariables(): Set<string> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cell = line.split('|')[1]!;
    for (const m of cell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1]!);
  }
  return names;
}

describe('configuration', () => {
  it('the README documents every variable the control plane reads, and no other', () => {
    const documented = documentedVariables();
    expect(CONFIG_VARIABLES.filter((v) => !documented.has(v))).toEqual([]);
    expect([...documented].filter((v) => !CONFIG_VARIABLES.includes(v))).toEqual([]);
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
    const supplied = loadConfig({ SWITCHYARD_RUNTIME_CA_CERT: cert, SWITCHYARD_RUNTIME_CA_KEY: key }).runtimeTls.suppliedCa;
    expect(supplied?.certificatePem).toContain('-----BEGIN CERTIFICATE-----');
    expect(supplied?.keyPem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(() => loadConfig({ SWITCHYARD_RUNTIME_CA_CERT: cert })).toThrow(/SWITCHYARD_RUNTIME_CA_CERT and SWITCHYARD_RUNTIME_CA_KEY go together/);
    expect(() => loadConfig({ SWITCHYARD_RUNTIME_CA_CERT: '/nonexistent/ca.pem', SWITCHYARD_RUNTIME_CA_KEY: key })).toThrow(/SWITCHYARD_RUNTIME_CA_CERT: cannot read \/nonexistent\/ca\.pem/);
    expect(() => loadConfig({ SWITCHYARD_RUNTIME_CA_CERT: key, SWITCHYARD_RUNTIME_CA_KEY: key })).toThrow(/holds no PEM CERTIFICATE/);
    expect(() => loadConfig({ SWITCHYARD_RUNTIME_CERT_DAYS: '0' })).toThrow(/SWITCHYARD_RUNTIME_CERT_DAYS/);
  });
});
