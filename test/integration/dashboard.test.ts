import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/cli/api-client.js';
import { applyManifests } from '../../src/cli/apply.js';
import { insertConfigVersion } from '../../src/db/config-repository.js';
import { insertSamples } from '../../src/db/stat-repository.js';
import type { StatSample } from '../../src/domain/stats.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeCert } from '../support/certs.js';
import { currentRevision } from '../support/fixture.js';

/** Debian's chromium (`apt-get install -y chromium`, installed by .ci/run); nothing downloads a browser. */
const CHROMIUM = '/usr/bin/chromium';
const SEED = new URL('../../examples/seed/', import.meta.url).pathname;
/** Kept after the run for a look (git-ignored). */
const SCREENSHOT = new URL('../../test-results/dashboard.png', import.meta.url).pathname;
const UI_TIMEOUT_MS = 15_000;
/** An HTML payload in data the page shows: it must come out as text, never as markup. */
const HOSTILE_ERROR = `[ALERT] config: parsing [/etc/switchyard/haproxy.cfg:42] <img src=x onerror="window.__pwned=1"> unknown keyword`;

let app: TestApp;
let work: string;
let context: BrowserContext;
let page: Page;
let agentToken: string;
const pageErrors: string[] = [];

/** The seed scenario from examples/seed/, applied in-process as `switchyard apply -f` does. */
async function applySeed(): Promise<void> {
  const seed = join(work, 'seed');
  cpSync(SEED, seed, { recursive: true });
  // tenant-b.yaml names shop.crt / shop.key beside it; the repository holds no key.
  const cert = makeCert('shop.tenant-b.example');
  writeFileSync(join(seed, 'shop.crt'), cert.certificate);
  writeFileSync(join(seed, 'shop.key'), cert.privateKey);
  // …and the CA bundle that verifies its TLS members (any certificate parses as one).
  writeFileSync(join(seed, 'members-ca.crt'), makeCert('members-ca.tenant-b.example').certificate);
  let output = '';
  const sink = new Writable({
    write: (chunk, _enc, done) => {
      output += String(chunk);
      done();
    },
  });
  const code = await applyManifests(
    { files: [seed], dryRun: false, prune: false },
    () => new ApiClient({ url: app.url, token: app.adminToken, attempts: 1 }),
    {
      stdout: sink,
      stderr: sink,
    },
  );
  expect(code, output).toBe(0);
}

/** A frontend sample of tenant-a's VIP `www` as the stats poller stores it. */
function sample(requestRate: number, sessions: number): StatSample {
  return {
    kind: 'frontend',
    tenant: 'tenant-a',
    proxy: 'fe_tenant-a_www',
    name: 'www',
    pool: null,
    sessions,
    sessionLimit: 40_000,
    sessionRate: requestRate / 4,
    counters: {
      requests: 0,
      responses2xx: 0,
      responses4xx: 0,
      responses5xx: 0,
      denied: 0,
      refused: 0,
      bytesIn: 0,
      bytesOut: 0,
    },
    rates: {
      requests: requestRate,
      responses2xx: requestRate * 0.95,
      responses4xx: requestRate * 0.05,
      responses5xx: 0,
      denied: 0,
      refused: 0,
      bytesIn: requestRate * 300,
      bytesOut: requestRate * 2000,
    },
    status: null,
    checkStatus: null,
  };
}

async function signIn(token: string): Promise<void> {
  await page.fill('#token-input', token);
  await page.click('#token-submit');
}

const cell = (row: string, col: string) => page.locator(`${row} [data-col="${col}"]`);

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; bash .ci/run does)`,
    );
  work = mkdtempSync(join(tmpdir(), 'sy-dashboard-'));
  app = await startTestApp();
  await applySeed();
  // A fresh profile per run: no cache, no stored session from an earlier run.
  context = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(UI_TIMEOUT_MS);
  page.on('pageerror', (err) => pageErrors.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    // A 401 shows up as "Failed to load resource": expected. A CSP violation never is.
    if (msg.type() === 'error' && /Content Security Policy|Refused to/.test(msg.text())) pageErrors.push(msg.text());
  });
});

afterAll(async () => {
  await context?.close();
  await app?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('dashboard at /ui', () => {
  it('is served with a strict content security policy and asks for a token', async () => {
    const res = await page.goto(`${app.url}/ui`);
    expect(res?.status()).toBe(200);
    expect(page.url()).toBe(`${app.url}/ui/`);
    const headers = res!.headers();
    expect(headers['content-security-policy']).toContain("default-src 'none'");
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(await page.locator('#token-input').getAttribute('type')).toBe('password');
    expect(await page.locator('#welcome').textContent()).toMatch(/Enter an API token/);
    expect(await page.locator('#dashboard').isHidden()).toBe(true);
  });

  it('serves its own files with their types and the same headers, and nothing else under /ui', async () => {
    for (const [file, type] of [
      ['main.js', /javascript/],
      ['dashboard.css', /text\/css/],
      ['favicon.svg', /image\/svg\+xml/],
    ] as const) {
      const res = await fetch(`${app.url}/ui/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get('content-type'), file).toMatch(type);
      expect(res.headers.get('x-content-type-options'), file).toBe('nosniff');
      expect(res.headers.get('content-security-policy'), file).toContain("default-src 'none'");
      expect(res.headers.get('cache-control'), file).toBe('no-cache');
    }
    const redirect = await fetch(`${app.url}/ui?x=1`, { redirect: 'manual' });
    expect([redirect.status, redirect.headers.get('location')]).toEqual([301, '/ui/?x=1']);
    expect((await fetch(`${app.url}/ui/missing.js`)).status).toBe(404);
    expect((await fetch(`${app.url}/ui/%2e%2e/package.json`)).status).toBe(404);
    expect((await fetch(`${app.url}/ui/`, { method: 'POST' })).status).toBe(404);
  });

  it('when the token is refused, then it says why and which token to use, and shows no data', async () => {
    await signIn('sy_not_a_valid_token_0123456789');
    const error = page.locator('#auth-error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toMatch(
      /The API refused this token \(401 unauthorized\).*An admin or operator token shows every tenant and node/,
    );
    expect(await page.locator('#dashboard').isHidden()).toBe(true);
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length,
      ),
    ).toBe(0);
  });

  it('with the admin token, then it lists the seed tenants with their state and reservation, and says what is empty', async () => {
    await signIn(app.adminToken);
    await page.locator('#tenants-table tr[data-tenant="tenant-c"]').waitFor();
    expect(await page.locator('#auth-error').isHidden()).toBe(true);
    expect(
      await page
        .locator('#tenants-table tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-tenant'))),
    ).toEqual(['tenant-a', 'tenant-b', 'tenant-c']);
    for (const [id, reservation] of [
      ['tenant-a', '2 vCPU / 4 GB'],
      ['tenant-b', '4 vCPU / 8 GB'],
      ['tenant-c', '1 vCPU / 2 GB'],
    ] as const) {
      const row = `#tenants-table tr[data-tenant="${id}"]`;
      expect(await cell(row, 'tenant').textContent()).toContain(id);
      expect(await cell(row, 'state').textContent()).toContain('active');
      expect(await cell(row, 'reservation').textContent()).toContain(reservation);
      expect(await cell(row, 'usage').textContent()).toContain('no samples in the last hour');
    }
    // No node yet: nothing is allocated, nothing sampled, and the page says so rather than drawing nothing.
    expect(await page.locator('#nodes-table tbody').textContent()).toContain('No nodes registered.');
    expect(await cell('#tenants-table tr[data-tenant="tenant-a"]', 'allocation').textContent()).toContain(
      'none (no node serves it)',
    );
    expect(await page.locator('[data-chart-tenant="tenant-a"] .empty').first().textContent()).toMatch(
      /No traffic samples and no allocation in the last hour/,
    );
  });

  it('after a node registers and traffic is sampled, then it shows the node and draws the tenant charts', async () => {
    const node = await app.admin('POST', '/v1/nodes', {
      name: 'edge-1',
      kind: 'haproxy',
      zone: 'zone-a',
      capacity: { vcpu: 8, memoryMb: 16384 },
    });
    expect(node.status, JSON.stringify(node.body)).toBe(201);
    const db = app.database.handle.db;
    // What the reconciler would have built for the node (its build runs `haproxy -c`; not needed to show it).
    const desired = await currentRevision(app);
    // An agent may only report a version built for its node: the older one it applied is stored too.
    await insertConfigVersion(db, {
      nodeName: 'edge-1',
      revision: desired - 1,
      contentHash: 'a'.repeat(64),
      structuralHash: 's'.repeat(64),
      filesSealed: '',
      fileNames: [],
      heldTenants: [],
    });
    await insertConfigVersion(db, {
      nodeName: 'edge-1',
      revision: desired,
      contentHash: 'd'.repeat(64),
      structuralHash: 's'.repeat(64),
      filesSealed: '',
      fileNames: [],
      heldTenants: [],
    });
    // The agent applied an older version, then failed to apply the new one.
    agentToken = node.body.agentToken;
    const agent = app.as(agentToken);
    expect(
      (
        await agent('POST', '/v1/nodes/edge-1/status', {
          event: 'applied',
          contentHash: 'a'.repeat(64),
          revision: desired - 1,
          proxyVersion: 'HAProxy 2.6.12',
        })
      ).status,
    ).toBe(200);
    expect((await agent('POST', '/v1/nodes/edge-1/status', { event: 'failed', error: HOSTILE_ERROR })).status).toBe(
      200,
    );
    // Thirty minutes of tenant-a traffic, one sample a minute, climbing from 100 to 390 req/s.
    const now = Date.now();
    for (let i = 0; i < 30; i++)
      await insertSamples(db, 'edge-1', new Date(now - (30 - i) * 60_000), [sample(100 + i * 10, 500 + i * 20)]);

    // The token is kept in sessionStorage: a reload signs in again on its own.
    await page.reload();
    const nodeRow = '#nodes-table tr[data-node="edge-1"]';
    await page.locator(nodeRow).waitFor();
    expect(await cell(nodeRow, 'kind').textContent()).toContain('haproxy');
    expect(await cell(nodeRow, 'zone').textContent()).toBe('zone-a');
    expect(await cell(nodeRow, 'revision').textContent()).toContain(`${desired} / ${desired - 1}`);
    expect(await cell(nodeRow, 'revision').textContent()).toContain('behind');
    expect(await cell(nodeRow, 'health').textContent()).toContain('healthy');
    // The proxy's message is shown as text; its markup never becomes an element.
    expect(await cell(nodeRow, 'last-error').textContent()).toContain(HOSTILE_ERROR);
    expect(await page.locator(`${nodeRow} img`).count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();

    // With a node, every tenant has caps (its reservation until the rebalancer runs).
    const a = '#tenants-table tr[data-tenant="tenant-a"]';
    expect(await cell(a, 'allocation').textContent()).toContain('40,000 conn · 20,000 req/s');
    expect(await cell(a, 'usage').textContent()).toMatch(/390 req\/s · 1,080 sessions/);

    const chart = page.locator('[data-chart-tenant="tenant-a"] figure[data-chart="tenant-a: requests/s"]');
    expect(Number(await chart.locator('path.line-observed').getAttribute('data-points'))).toBeGreaterThanOrEqual(25);
    expect(await chart.locator('path.line-cap').count()).toBe(1);
    expect(await chart.locator('.legend').textContent()).toContain('allocated req/s');
    // tenant-c has caps but no traffic: its chart draws the cap and says the samples are missing.
    const c = page.locator('[data-chart-tenant="tenant-c"] figure[data-chart="tenant-c: requests/s"]');
    expect(await c.locator('path.line-cap').count()).toBe(1);
    expect(await c.locator('path.line-observed').count()).toBe(0);
    expect(await c.locator('.legend').textContent()).toContain('observed req/s: no samples');

    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    rmSync(SCREENSHOT, { force: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: UI_TIMEOUT_MS });
    expect(existsSync(SCREENSHOT)).toBe(true);
    const png = readFileSync(SCREENSHOT);
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
    expect(png.readUInt32BE(16)).toBe(1280); // IHDR width
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(20_000);
  });

  it('draws the caps as they changed: going back from the current caps, each change in the history is undone', async () => {
    const allocation = {
      current: [
        { node: 'n1', maxConnections: 60_000, requestsPerSecond: 30_000, source: 'rebalancer' },
        { node: 'n2', maxConnections: 40_000, requestsPerSecond: 20_000, source: 'reservation' },
      ],
      history: [
        { node: 'n1', dimension: 'connections', from: 50_000, to: 60_000, at: '2026-11-26T16:40:00Z' },
        { node: 'n1', dimension: 'requestsPerSecond', from: 25_000, to: 30_000, at: '2026-11-26T16:40:00Z' },
        { node: 'n1', dimension: 'connections', from: null, to: 50_000, at: '2026-11-26T16:20:00Z' },
        { node: 'n1', dimension: 'connections', from: 45_000, to: null, at: '2026-11-26T15:00:00Z' },
      ],
    };
    const from = Date.parse('2026-11-26T16:00:00Z');
    const to = Date.parse('2026-11-26T17:00:00Z');
    // The page's own module, run in the page (as a string: vitest would rewrite an import() in a function).
    const seriesOf = async (alloc: unknown, dimension: string) => {
      const points = (await page.evaluate(
        `import(${JSON.stringify(`${app.url}/ui/model.js`)}).then((m) => m.allocationSeries(${JSON.stringify(alloc)}, ${JSON.stringify(dimension)}, ${from}, ${to}))`,
      )) as { t: number; v: number | null }[];
      return points.map((p) => [(p.t - from) / 60_000, p.v]);
    };
    const series = {
      connections: await seriesOf(allocation, 'connections'),
      requestsPerSecond: await seriesOf(allocation, 'requestsPerSecond'),
      none: await seriesOf({ current: [], history: [] }, 'connections'),
    };
    // n1 had no stored cap before 16:20 (only n2's counts), 50,000 until 16:40, 60,000 since.
    expect(series.connections).toEqual([
      [0, 40_000],
      [20, 90_000],
      [40, 100_000],
      [60, 100_000],
    ]);
    expect(series.requestsPerSecond).toEqual([
      [0, 45_000],
      [40, 50_000],
      [60, 50_000],
    ]);
    expect(series.none).toEqual([]);
  });

  it('with a tenant-viewer token, then it shows that tenant only and says the fleet needs another token', async () => {
    const viewer = await app.token('tenant-viewer', { tenant: 'tenant-b' });
    await page.click('#sign-out');
    await signIn(viewer);
    await page.locator('#nodes-note').waitFor({ state: 'visible' });
    expect(
      await page
        .locator('#tenants-table tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-tenant'))),
    ).toEqual(['tenant-b']);
    expect(await page.locator('#nodes-note').textContent()).toMatch(/admin and operator tokens only.*403/);
    expect(await page.locator('#nodes-table tr[data-node]').count()).toBe(0);
    expect(
      await page
        .locator('[data-chart-tenant]')
        .evaluateAll((cards) => cards.map((c) => c.getAttribute('data-chart-tenant'))),
    ).toEqual(['tenant-b']);
  });

  it("with a node's agent token, then it says the token may not list tenants and which token to use", async () => {
    await page.click('#sign-out');
    await signIn(agentToken);
    const error = page.locator('#auth-error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toMatch(
      /This token may not list tenants \(403 forbidden\).*An admin or operator token/,
    );
    expect(await page.locator('#dashboard').isHidden()).toBe(true);
  });

  it('raised no script error and no content security policy violation', () => {
    expect(pageErrors).toEqual([]);
  });
});
