import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { NodeSnapshot, RenderedFiles } from '../../src/domain/snapshot.js';
import { renderHaproxy } from '../../src/render/haproxy.js';
import { haproxyValidationDir, validateHaproxy, validateHaproxySnapshot } from '../../src/render/validate-haproxy.js';
import { featuresSnapshot } from '../fixtures/features-snapshot.js';
import { GOLDEN_CONFIG_DIR, readGolden } from '../fixtures/golden.js';
import { seedSnapshot } from '../fixtures/seed-snapshot.js';

/** The real `haproxy -c` on rendered configs: the golden scenarios, and the validator itself. */

const scratch = mkdtempSync(join(tmpdir(), 'validate-haproxy-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SCENARIOS: Record<string, (configDir: string) => NodeSnapshot> = {
  seed: (dir) => seedSnapshot('haproxy', dir),
  features: (dir) => featuresSnapshot('haproxy', dir),
};

/** The same files as if rendered for another configDir: only to compare, never to deploy. */
function relocated(files: RenderedFiles, from: string, to: string): RenderedFiles {
  return Object.fromEntries(Object.entries(files).map(([file, content]) => [file, content.split(from).join(to)]));
}

describe.each(Object.keys(SCENARIOS))('the golden %s scenario', (name) => {
  it('passes the real haproxy -c, without a warning, as the golden files with only configDir changed', async () => {
    const configDir = haproxyValidationDir();
    const files = renderHaproxy(SCENARIOS[name]!(configDir));
    expect(relocated(files, configDir, GOLDEN_CONFIG_DIR.haproxy)).toEqual(readGolden('haproxy', name));
    const result = await validateHaproxy(files, configDir);
    expect(result).toEqual({ ok: true, output: 'Configuration file is valid' });
  });
});

describe('validateHaproxy', () => {
  it('accepts the seed and removes its directory afterwards', async () => {
    const dir = haproxyValidationDir();
    const result = await validateHaproxy(renderHaproxy(seedSnapshot('haproxy', dir)), dir);
    expect(result.ok).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it('when the config is broken, then it returns the binary’s own message', async () => {
    const dir = haproxyValidationDir();
    const files = renderHaproxy(seedSnapshot('haproxy', dir));
    const broken = {
      ...files,
      'haproxy.cfg': files['haproxy.cfg']!.replace('    option redispatch\n', '    option no-such-option\n'),
    };
    const result = await validateHaproxy(broken, dir);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toMatch(/\[ALERT\].*unknown option 'no-such-option'/);
    expect(existsSync(dir)).toBe(false);
  });

  it('when a certificate passes the guard but not OpenSSL, then haproxy names the file', async () => {
    const dir = haproxyValidationDir();
    const files = renderHaproxy(seedSnapshot('haproxy', dir));
    const pem =
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    const result = await validateHaproxy({ ...files, 'certs/b/b-example.pem': pem }, dir);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toContain(`${dir}/certs/b/b-example.pem`);
  });

  it('never writes outside configDir nor over an existing directory', async () => {
    await expect(validateHaproxy({ '../escape.cfg': 'x' }, haproxyValidationDir())).rejects.toThrow(
      /escapes configDir/,
    );
    await expect(validateHaproxy({ 'haproxy.cfg': 'x' }, scratch)).rejects.toThrow(/EEXIST/);
    await expect(validateHaproxy({ 'haproxy.cfg': 'x' }, 'relative')).rejects.toThrow(/absolute/);
  });

  it('reports a missing binary and a check that hangs instead of throwing', async () => {
    const missing = await validateHaproxySnapshot(seedSnapshot('haproxy', '/x'), {
      binary: join(scratch, 'no-haproxy'),
    });
    expect(missing).toMatchObject({ ok: false, message: expect.stringContaining('not found') });
    const hanging = join(scratch, 'hanging-haproxy');
    writeFileSync(hanging, '#!/bin/sh\nexec sleep 10\n');
    chmodSync(hanging, 0o755);
    const slow = await validateHaproxySnapshot(seedSnapshot('haproxy', '/x'), { binary: hanging, timeoutMs: 300 });
    expect(slow).toMatchObject({ ok: false, message: expect.stringContaining('did not finish within 300 ms') });
  });
});
