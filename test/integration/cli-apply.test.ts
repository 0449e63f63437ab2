import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision } from '../support/fixture.js';
import { freePort } from './haproxy-render-support.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/switchyard.mjs', import.meta.url).pathname;
const SEED = new URL('../../examples/seed/', import.meta.url).pathname;

let app: TestApp;
let work: string;
let seed: string;

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real CLI in its own process, talking to the in-process control plane over HTTP. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      cwd: work,
      env: {
        ...process.env,
        SWITCHYARD_URL: app.url,
        SWITCHYARD_TOKEN: app.adminToken,
        SWITCHYARD_RETRIES: '1',
        ...env,
      },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The README's seed curl block, run as printed (as test/api/readme-seed.test.ts does). */
function readmeSeedScript(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /```bash\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## The seed scenario')));
  if (!block) throw new Error('README has no bash block under "## The seed scenario"');
  return block[1]!;
}

const VOLATILE = new Set(['revision', 'createdAt', 'updatedAt', 'fingerprintSha256', 'notBefore', 'notAfter']);
const stable = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(stable)
    : value !== null && typeof value === 'object'
      ? Object.fromEntries(
          Object.entries(value)
            .filter(([k]) => !VOLATILE.has(k))
            .map(([k, v]) => [k, stable(v)]),
        )
      : value;

/** Everything the API says about the seed tenants, minus what differs between two runs (revisions, times, key material). */
async function seedState(target: TestApp): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const t of ['tenant-a', 'tenant-b', 'tenant-c']) {
    const get = async (path: string) => (await target.admin('GET', `/v1/tenants/${t}${path}`)).body;
    const pools = (await get('/pools')).items;
    const vips = (await get('/vips')).items;
    out[t] = stable({
      tenant: await get(''),
      certificates: (await get('/certificates')).items,
      caBundles: (await get('/ca-bundles')).items,
      pools: await Promise.all(
        pools.map(async (p: { name: string }) => ({ ...p, members: (await get(`/pools/${p.name}/members`)).items })),
      ),
      vips: await Promise.all(
        vips.map(async (v: { name: string }) => ({ ...v, routes: (await get(`/vips/${v.name}/routes`)).items })),
      ),
    });
  }
  return out;
}

const withApiVip = (yaml: string) =>
  yaml.replace(
    '{ name: web-2, address: 10.0.1.12, port: 8080 }',
    '{ name: web-2, address: 10.0.1.12, port: 8080, weight: 50 }',
  ) +
  '    - name: api\n      address: 192.168.1.110\n      port: 80\n      protocol: http\n      defaultPool: web\n' +
  '      routes:\n        - { name: v1, match: { pathPrefix: /v1 }, pool: web }\n';

beforeAll(async () => {
  app = await startTestApp();
  work = mkdtempSync(join(tmpdir(), 'sy-apply-'));
  seed = join(work, 'seed');
  cpSync(SEED, seed, { recursive: true });
  // The README's openssl line, into the copy: the repository holds no key.
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '365',
    '-subj',
    '/CN=shop.tenant-b.example',
    '-addext',
    'subjectAltName=DNS:shop.tenant-b.example',
    '-keyout',
    join(seed, 'shop.key'),
    '-out',
    join(seed, 'shop.crt'),
  ]);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '3650',
    '-subj',
    '/CN=Tenant B members CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-keyout',
    join(seed, 'members-ca.key'),
    '-out',
    join(seed, 'members-ca.crt'),
  ]);
});
afterAll(async () => {
  await app?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('switchyard apply', () => {
  it('docs/cli-and-ci.md shows the example files exactly as committed', () => {
    const doc = readFileSync(new URL('../../docs/cli-and-ci.md', import.meta.url), 'utf8');
    for (const name of ['tenant-a.yaml', 'tenant-b.yaml', 'tenant-c.yaml']) {
      const block = new RegExp(`\`\`\`yaml\\n# examples/seed/${name.replace('.', '\\.')}\\n([\\s\\S]*?)\`\`\``).exec(
        doc,
      );
      expect(block?.[1], `docs/cli-and-ci.md block for ${name}`).toBe(readFileSync(join(SEED, name), 'utf8'));
    }
  });

  it('applies examples/seed/ and creates the three tenants exactly as the README curl seed does', async () => {
    const res = await cli(['apply', '-f', 'seed/']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('created certificate tenant-b/shop');
    expect(res.stdout).toContain('created ca-bundle tenant-b/members');
    expect(res.stdout).toMatch(
      /applied 11 changes \(11 created, 0 updated, 0 deleted\) to 3 tenants; the control plane is at revision \d+/,
    );

    const reference = await startTestApp();
    const dir = mkdtempSync(join(tmpdir(), 'sy-apply-ref-'));
    try {
      await run('bash', ['-euo', 'pipefail', '-c', readmeSeedScript()], {
        cwd: dir,
        env: { ...process.env, SY: reference.url, TOKEN: reference.adminToken },
        timeout: 30_000,
      });
      expect(await seedState(app)).toEqual(await seedState(reference));
    } finally {
      await reference.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when applied again, then it sends no write, commits no revision and says unchanged', async () => {
    const before = await currentRevision(app);
    const res = await cli(['apply', '-f', 'seed/']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('tenant-b (seed/tenant-b.yaml[0]): unchanged');
    expect(res.stdout).toContain('unchanged: 3 tenants already match; nothing to do');
    expect(await currentRevision(app)).toBe(before);
  });

  it('--dry-run prints the plan per object, with runtime or reload when the server predicts it, and changes nothing', async () => {
    const node = await app.admin('POST', '/v1/nodes', {
      name: 'edge-plan',
      kind: 'haproxy',
      capacity: { vcpu: 8, memoryMb: 16384 },
      configDir: join(work, 'edge'),
    });
    expect(node.status, JSON.stringify(node.body)).toBe(201);
    try {
      writeFileSync(join(work, 'a-more.yaml'), withApiVip(readFileSync(join(seed, 'tenant-a.yaml'), 'utf8')));
      const before = await currentRevision(app);
      const res = await cli(['apply', '-f', 'a-more.yaml', '--dry-run']);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/update pool tenant-a\/web \(members: ~1\)/);
      expect(res.stdout).toContain('create route tenant-a/api/v1 (after earlier steps)');
      expect(res.stdout).toContain('dry run: 2 to create, 1 to update, 0 to delete in 1 tenant; nothing was changed');
      const openapi = await app.admin('GET', '/openapi.json');
      if (JSON.stringify(openapi.body).includes('"dryRun"')) {
        // A node without a Runtime API address takes every change with a reload.
        expect(res.stdout).toContain('create vip tenant-a/api (reload)');
      } else {
        expect(res.stdout).toContain('does not take ?dryRun=true');
      }
      expect(await currentRevision(app)).toBe(before);
      expect((await app.admin('GET', '/v1/tenants/tenant-a/vips/api')).status).toBe(404);
    } finally {
      await app.admin('DELETE', '/v1/nodes/edge-plan');
    }
  });

  it('--prune removes a VIP the file no longer names, and nothing of other tenants', async () => {
    const added = await cli(['apply', '-f', 'a-more.yaml']);
    expect(added.code, added.stderr).toBe(0);
    expect((await app.admin('GET', '/v1/tenants/tenant-a/vips/api/routes/v1')).status).toBe(200);

    const kept = await cli(['apply', '-f', 'seed/tenant-a.yaml']);
    expect(kept.stdout).toContain('updated pool tenant-a/web (members: ~1)');
    expect(kept.stdout).toContain('1 object(s) on the server are not in the file and are kept (--prune deletes them)');
    expect((await app.admin('GET', '/v1/tenants/tenant-a/vips/api')).status).toBe(200);

    const pruned = await cli(['apply', '-f', 'seed/tenant-a.yaml', '--prune']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain('deleted vip tenant-a/api (with its 1 route(s))');
    expect(pruned.stdout).toContain('applied 1 change (0 created, 0 updated, 1 deleted) to 1 tenant');
    expect((await app.admin('GET', '/v1/tenants/tenant-a/vips/api')).status).toBe(404);
    expect((await app.admin('GET', '/v1/tenants/tenant-a/vips/www')).status).toBe(200);
    expect((await app.admin('GET', '/v1/tenants/tenant-b/vips/shop')).status).toBe(200);
  });

  it('with a registrar token (a CI pipeline), then a new tenant is registered and waits for approval', async () => {
    const registrar = await app.token('registrar');
    writeFileSync(
      join(work, 'tenant-r.yaml'),
      readFileSync(join(seed, 'tenant-c.yaml'), 'utf8')
        .replace('name: tenant-c', 'name: tenant-r')
        .replaceAll('192.168.1.102', '192.168.1.122'),
    );
    const res = await cli(['apply', '-f', 'tenant-r.yaml'], { SWITCHYARD_TOKEN: registrar });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('note: tenant tenant-r is pending approval');
    expect((await app.admin('GET', '/v1/tenants/tenant-r')).body.state).toBe('pending_approval');
    const again = await cli(['apply', '-f', 'tenant-r.yaml'], { SWITCHYARD_TOKEN: registrar });
    expect(again.stdout).toContain('tenant-r (tenant-r.yaml[0]): unchanged');
  });

  it('when a file is invalid, then it exits 1 naming the file, document and field, and changes nothing', async () => {
    const bad = join(work, 'bad');
    mkdirSync(bad);
    writeFileSync(
      join(bad, 'a.yaml'),
      readFileSync(join(seed, 'tenant-a.yaml'), 'utf8').replace('port: 80\n', 'port: 70000\n'),
    );
    writeFileSync(join(bad, 'b.yml'), 'apiVersion: switchyard/v1\nkind: [Tenant\n');
    const before = await currentRevision(app);
    const res = await cli(['apply', '-f', 'bad']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('bad/a.yaml[0] spec.vips[0].port: Too big: expected number to be <=65535');
    expect(res.stderr).toMatch(/bad\/b\.yml\[0\]: YAML: .* at line \d+, column \d+/);
    expect(res.stderr).toContain('nothing was applied: fix the 2 problems above and re-run');
    expect(await currentRevision(app)).toBe(before);
  });

  it('when the address is taken by another tenant, then the 409 exits 2 and says what to do', async () => {
    writeFileSync(
      join(work, 'tenant-d.yaml'),
      'apiVersion: switchyard/v1\nkind: Tenant\nmetadata: { name: tenant-d }\nspec:\n  pools: [{ name: web }]\n' +
        '  vips: [{ name: www, address: 192.168.1.100, port: 80, protocol: http, defaultPool: web }]\n',
    );
    const res = await cli(['apply', '-f', 'tenant-d.yaml']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(
      'create vip tenant-d/www failed: POST /v1/tenants/tenant-d/vips: 409 192.168.1.100:80 is already in use by a VIP; resolve the conflict, then re-run',
    );
  });

  it('when the control plane is down, then it exits 3', async () => {
    const port = await freePort('127.0.0.1');
    const res = await cli(['apply', '-f', 'seed/'], { SWITCHYARD_URL: `http://127.0.0.1:${port}` });
    expect(res.code).toBe(3);
    expect(res.stderr).toContain(
      `cannot reach the control plane at http://127.0.0.1:${port} (ECONNREFUSED) after 2 attempts`,
    );
  });
});

describe('switchyard get and delete', () => {
  it('get tenant -o yaml prints a manifest that re-applies as a no-op', async () => {
    await Promise.all(
      ['tenant-a', 'tenant-b', 'tenant-c'].map(async (t) => {
        const res = await cli(['get', 'tenant', t, '-o', 'yaml']);
        expect(res.code, res.stderr).toBe(0);
        writeFileSync(join(work, `got-${t}.yaml`), res.stdout);
      }),
    );
    expect(readFileSync(join(work, 'got-tenant-b.yaml'), 'utf8')).toMatch(/# certificates:\n {2}# {3}- name: shop/);
    const before = await currentRevision(app);
    const res = await cli(['apply', '-f', 'got-tenant-a.yaml', '-f', 'got-tenant-b.yaml', '-f', 'got-tenant-c.yaml']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('unchanged: 3 tenants already match; nothing to do');
    expect(await currentRevision(app)).toBe(before);
  });

  it('get lists objects as a table or JSON', async () => {
    const [tenants, members, missing] = await Promise.all([
      cli(['get', 'tenants']),
      cli(['get', 'members', '-t', 'tenant-c', '-o', 'json']),
      cli(['get', 'vips']),
    ]);
    expect(tenants.stdout).toMatch(/^NAME\s+STATE\s+RESERVATION/);
    expect(tenants.stdout).toMatch(/tenant-b\s+active\s+4 vCPU \/ 8192 MB/);
    expect(JSON.parse(members.stdout).map((m: { name: string }) => m.name)).toEqual(['bastion-1', 'bastion-2']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('give the tenant with -t TENANT');
  });

  it('delete tenant refuses while it has VIPs, and --cascade deletes them first', async () => {
    const refused = await cli(['delete', 'tenant', 'tenant-c']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('or run: switchyard delete tenant tenant-c --cascade');
    const res = await cli(['delete', 'tenant', 'tenant-c', '--cascade']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/deleted vip tenant-c\/ssh at revision \d+\ndeleted tenant tenant-c at revision \d+/);
    expect((await app.admin('GET', '/v1/tenants/tenant-c')).status).toBe(404);
  });
});
