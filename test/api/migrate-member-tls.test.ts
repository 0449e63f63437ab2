import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.js';
import { MIGRATIONS_DIR, migrateToLatest } from '../../src/db/migrate.js';
import { withDatabase } from '../global-setup.js';

/**
 * 0016 on a database that holds pools from before TLS to members: an https check on the traffic
 * port meant TLS members (they get `verify: none`, what the check did); one on another port meant
 * plain members with a TLS health endpoint (the check becomes tcp on that port). Others are untouched.
 */
describe('migration 0016 (TLS to members)', () => {
  it('gives pools with an https check what their members speak, and leaves the others alone', async () => {
    const { adminUrl, prefix } = inject('testDatabase');
    const name = `${prefix}_m${randomBytes(3).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    const handle = await openDatabase({ url: withDatabase(adminUrl, name), dataDir: '/nonexistent' });
    // Migrations up to 0015 only: copied beside the real ones, so their imports resolve.
    const before = mkdtempSync(join(MIGRATIONS_DIR, '..', 'test', '.migrations-'));
    try {
      for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => /^00(0\d|1[0-5])-.*\.ts$/.test(f)))
        copyFileSync(join(MIGRATIONS_DIR, f), join(before, f));
      await migrateToLatest(handle.db, before);
      const check = (type: string, port: number | null) =>
        JSON.stringify({
          type,
          path: '/health',
          expectedStatus: '200',
          host: null,
          port,
          intervalMs: 2000,
          timeoutMs: 1000,
          rise: 2,
          fall: 3,
        });
      await sql`insert into tenants (id, display_name, state, reservation_vcpu, reservation_memory_mb, limit_vcpu, limit_memory_mb, weight, labels, revision)
                values ('t', 'T', 'active', 1, 1024, 1, 1024, 100, '{}', 1)`.execute(handle.db);
      await sql`insert into pools (tenant_id, name, algorithm, health_check, revision) values
                ('t', 'same-port', 'roundrobin', ${check('https', null)}::jsonb, 1),
                ('t', 'other-port', 'roundrobin', ${check('https', 8443)}::jsonb, 1),
                ('t', 'plain', 'roundrobin', ${check('http', null)}::jsonb, 1)`.execute(handle.db);
      await migrateToLatest(handle.db);
      const rows = await handle.db
        .selectFrom('pools')
        .select(['name', 'health_check', 'tls'])
        .orderBy('name')
        .execute();
      expect(
        rows.map((r) => [
          r.name,
          (r.health_check as { type: string; port: number | null }).type,
          (r.health_check as { port: number | null }).port,
          r.tls,
        ]),
      ).toEqual([
        ['other-port', 'tcp', 8443, null],
        ['plain', 'http', null, null],
        ['same-port', 'https', null, { verify: 'none', caBundle: null, sni: null, clientCertificate: null, alpn: [] }],
      ]);
    } finally {
      rmSync(before, { recursive: true, force: true });
      await handle.close();
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});
