import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../src/domain/errors.js';
import { renderNginx } from '../../src/render/nginx.js';
import { validateNginx } from '../../src/render/validate-nginx.js';
import { GOLDEN_CONFIG_DIR, readGolden } from '../fixtures/golden.js';
import { seedSnapshot } from '../fixtures/seed-snapshot.js';

/** The real `nginx -t` on rendered configs: the golden scenarios, and the validator itself. */

const CONFIG_DIR = '/etc/nginx/switchyard';
const seedFiles = () => renderNginx(seedSnapshot('nginx', CONFIG_DIR));

/** Directories under the temp dir holding a file of this name (the validator's scratch copies). */
function scratchCopiesOf(marker: string): string[] {
  return readdirSync(tmpdir())
    .filter((d) => d.startsWith('switchyard-nginx-'))
    .filter((d) => existsSync(join(tmpdir(), d, marker)));
}

describe.each(['seed', 'features'])('the golden %s scenario', (name) => {
  it('passes the real nginx -t without a warning', async () => {
    expect(await validateNginx(readGolden('nginx', name), GOLDEN_CONFIG_DIR.nginx)).toEqual({ ok: true, warnings: [] });
  });
});

describe('validateNginx', () => {
  it('passes the files a node will run, rendered for its own configDir, and leaves nothing behind', async () => {
    const marker = `marker-${randomUUID()}.txt`;
    const result = await validateNginx({ ...seedFiles(), [marker]: 'x' }, CONFIG_DIR);
    expect(result).toEqual({ ok: true, warnings: [] });
    expect(scratchCopiesOf(marker)).toEqual([]);
    expect(existsSync(CONFIG_DIR)).toBe(false);
  });

  it('finds the configDir the files were rendered for when it is not given', async () => {
    expect(await validateNginx(renderNginx(seedSnapshot('nginx', '/srv/lb-7')))).toEqual({ ok: true, warnings: [] });
  });

  it("when nginx refuses the config, then it returns nginx's own message", async () => {
    const files = seedFiles();
    const broken = { ...files, 'nginx.conf': files['nginx.conf']!.replace('keepalive 32;', 'keepalive 32 always;') };
    const result = await validateNginx(broken, CONFIG_DIR);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toMatch(
        /\[emerg\] .*invalid number of arguments in "keepalive" directive in \/tmp\/switchyard-nginx-\w+\/nginx\.conf:\d+/,
      );
      expect(result.message).toMatch(/test failed$/);
    }
  });

  it('when a referenced certificate does not parse, then nginx says so', async () => {
    const result = await validateNginx(
      { ...seedFiles(), 'certs/b/b-example.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
      CONFIG_DIR,
    );
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain('cannot load certificate');
  });

  it('binds VIP addresses this host does not have in a network namespace of its own', async () => {
    const isolated = await validateNginx(seedFiles(), CONFIG_DIR);
    expect(isolated.ok).toBe(true);
    // What isolation avoids: nginx -t binds every listener, and 192.168.1.100 is not on this host.
    const direct = await validateNginx(seedFiles(), CONFIG_DIR, { isolateNetwork: false });
    expect(direct).toEqual({
      ok: false,
      message: expect.stringContaining('bind() to 192.168.1.100:80 failed (99: Cannot assign requested address)'),
    });
  });

  it('refuses to write a file outside its scratch directory', async () => {
    await expect(validateNginx({ ...seedFiles(), '../escape.txt': 'x' }, CONFIG_DIR)).rejects.toThrow(UpstreamError);
    await expect(validateNginx({ ...seedFiles(), '/etc/escape.txt': 'x' }, CONFIG_DIR)).rejects.toThrow(UpstreamError);
  });

  it('when the validator cannot run, then it throws instead of blaming the config', async () => {
    await expect(validateNginx(seedFiles(), CONFIG_DIR, { nginxBin: '/nonexistent/nginx' })).rejects.toThrow(
      UpstreamError,
    );
    await expect(
      validateNginx(seedFiles(), CONFIG_DIR, { nginxBin: '/nonexistent/nginx', isolateNetwork: false }),
    ).rejects.toThrow(UpstreamError);
  });
});
