import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { Certificate } from '../domain/certificate.js';
import type { Member } from '../domain/member.js';
import type { Pool } from '../domain/pool.js';
import type { Route } from '../domain/route.js';
import type { Resources, Tenant } from '../domain/tenant.js';
import type { Vip } from '../domain/vip.js';
import { ApiError, clientFromEnv, type ApiClient } from './api-client.js';
import type { Output } from './apply-reporter.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { formatTable } from './format-table.js';
import { runCommand } from './run-command.js';
import { UsageError } from './usage-error.js';
import { manifestFromState, manifestYaml } from './tenant-manifest.js';
import { fetchTenantState } from './tenant-state.js';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Resource kinds `get` and `delete` take, singular or plural. */
export const KIND_ALIASES: Record<string, ResourceKind> = {
  tenant: 'tenants',
  tenants: 'tenants',
  vip: 'vips',
  vips: 'vips',
  pool: 'pools',
  pools: 'pools',
  member: 'members',
  members: 'members',
  route: 'routes',
  routes: 'routes',
  certificate: 'certificates',
  certificates: 'certificates',
  cert: 'certificates',
  certs: 'certificates',
};
export type ResourceKind = 'tenants' | 'vips' | 'pools' | 'members' | 'routes' | 'certificates';

export interface GetOptions {
  readonly tenant?: string;
  readonly output: OutputFormat;
  readonly vip?: string;
  readonly pool?: string;
}

export function registerGetCommand(program: Command, out: Output = process): void {
  program
    .command('get')
    .description('show tenants and their objects; `get tenant NAME -o yaml` prints a manifest `apply` accepts')
    .argument('<kind>', 'tenants, vips, pools, members, routes or certificates (singular works too)')
    .argument('[name]', 'one object by name')
    .option('-t, --tenant <tenant>', 'the tenant whose objects to show (all but tenants)')
    .option('-o, --output <format>', `${OUTPUT_FORMATS.join(', ')}`, 'table')
    .option('--vip <vip>', 'routes: of this VIP only')
    .option('--pool <pool>', 'members: of this pool only')
    .addHelpText(
      'after',
      '\nExit codes: 0 shown, 1 invalid arguments, 2 not found or refused, 3 server or network error.',
    )
    .action(
      async (
        kind: string,
        name: string | undefined,
        opts: { tenant?: string; output: string; vip?: string; pool?: string },
      ) => {
        process.exitCode = await runCommand(out, async () => {
          const resolved = resolveKind(kind);
          if (!(OUTPUT_FORMATS as readonly string[]).includes(opts.output))
            throw new UsageError(`-o must be one of ${OUTPUT_FORMATS.join(', ')}`);
          return getResources(clientFromEnv(), resolved, name, { ...opts, output: opts.output as OutputFormat }, out);
        });
      },
    );
}

export function resolveKind(kind: string): ResourceKind {
  const resolved = KIND_ALIASES[kind.toLowerCase()];
  if (!resolved)
    throw new UsageError(`unknown kind "${kind}": use one of tenants, vips, pools, members, routes, certificates`);
  return resolved;
}

/** `switchyard get`: reads through the API and prints a table, JSON or YAML. */
export async function getResources(
  client: ApiClient,
  kind: ResourceKind,
  name: string | undefined,
  opts: GetOptions,
  out: Output,
): Promise<ExitCode> {
  if (kind === 'tenants')
    return name === undefined ? listTenants(client, opts, out) : showTenant(client, name, opts, out);
  if (!opts.tenant) throw new UsageError(`give the tenant with -t TENANT (switchyard get ${kind} -t TENANT)`);
  const base = `/v1/tenants/${encodeURIComponent(opts.tenant)}`;
  let items: object[];
  if (kind === 'routes') {
    const vips = opts.vip ? [opts.vip] : (await client.list<Vip>(`${base}/vips`)).map((v) => v.name);
    items = (
      await Promise.all(vips.map((v) => client.list<Route>(`${base}/vips/${encodeURIComponent(v)}/routes`)))
    ).flat();
  } else if (kind === 'members') {
    const pools = opts.pool ? [opts.pool] : (await client.list<Pool>(`${base}/pools`)).map((p) => p.name);
    items = (
      await Promise.all(pools.map((p) => client.list<Member>(`${base}/pools/${encodeURIComponent(p)}/members`)))
    ).flat();
  } else {
    items = await client.list<object>(`${base}/${kind}`);
  }
  if (name !== undefined) {
    items = items.filter((i) => (i as { name: string }).name === name);
    if (items.length === 0) {
      out.stderr.write(`switchyard: ${kind.replace(/s$/, '')} "${name}" not found in tenant ${opts.tenant}\n`);
      return EXIT.conflict;
    }
  }
  const single = name !== undefined && items.length === 1 ? items[0] : items;
  if (opts.output !== 'table') return print(out, opts.output, single);
  out.stdout.write((TABLES[kind] as (items: readonly object[]) => string)(items));
  return EXIT.ok;
}

async function listTenants(client: ApiClient, opts: GetOptions, out: Output): Promise<ExitCode> {
  const tenants = await client.list<Tenant>('/v1/tenants');
  if (opts.output !== 'table') return print(out, opts.output, tenants);
  out.stdout.write(tenantTable(tenants));
  return EXIT.ok;
}

async function showTenant(client: ApiClient, name: string, opts: GetOptions, out: Output): Promise<ExitCode> {
  const state = await fetchTenantState(client, name);
  if (!state.tenant) {
    throw new ApiError(
      'not-found',
      `tenant "${name}" not found (a tenant-scoped token sees only its own tenant)`,
      { method: 'GET', path: `/v1/tenants/${name}` },
      404,
    );
  }
  if (opts.output === 'yaml') {
    out.stdout.write(manifestYaml(state, client.baseUrl));
    return EXIT.ok;
  }
  if (opts.output === 'json') {
    if (state.certificates.length > 0) {
      out.stderr.write(
        `note: certificates are not in the JSON manifest (their private keys never leave the control plane); -o yaml lists them as comments\n`,
      );
    }
    out.stdout.write(`${JSON.stringify(manifestFromState(state), null, 2)}\n`);
    return EXIT.ok;
  }
  const section = <T>(title: string, items: readonly T[], table: (items: readonly T[]) => string) =>
    `\n${title}:\n${items.length === 0 ? '  (none)\n' : table(items)}`;
  const sections = [
    tenantTable([state.tenant]),
    section('certificates', state.certificates, TABLES.certificates),
    section(
      'pools',
      state.pools.map((p) => ({ ...p, memberCount: p.members.length })),
      TABLES.pools,
    ),
    section('vips', state.vips, TABLES.vips),
    section(
      'routes',
      state.vips.flatMap((v) => v.routes),
      TABLES.routes,
    ),
  ];
  out.stdout.write(sections.join(''));
  return EXIT.ok;
}

function print(out: Output, format: 'json' | 'yaml', value: unknown): ExitCode {
  out.stdout.write(format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, { lineWidth: 0 }));
  return EXIT.ok;
}

const resources = (r: Resources) => `${r.vcpu} vCPU / ${r.memoryMb} MB`;

function tenantTable(tenants: readonly Tenant[]): string {
  return formatTable(
    ['NAME', 'STATE', 'RESERVATION', 'LIMIT', 'WEIGHT', 'LABELS'],
    tenants.map((t) => [t.id, t.state, resources(t.reservation), resources(t.limit), t.weight, t.labels]),
  );
}

const TABLES = {
  vips: (vips: readonly Vip[]) =>
    formatTable(
      ['NAME', 'ADDRESS', 'PORT', 'PROTOCOL', 'HOSTNAMES', 'CERTIFICATE', 'PERSISTENCE', 'DEFAULT-POOL'],
      vips.map((v) => [
        v.name,
        v.addressPool ? `${v.address} (${v.addressPool})` : v.address,
        v.port,
        v.protocol,
        v.hostnames,
        v.certificate,
        v.persistence,
        v.defaultPool,
      ]),
    ),
  pools: (pools: readonly (Pool & { memberCount?: number })[]) =>
    formatTable(
      ['NAME', 'ALGORITHM', 'CHECK', 'MEMBERS'],
      pools.map((p) => [
        p.name,
        p.algorithm,
        p.healthCheck ? `${p.healthCheck.type}${p.healthCheck.type === 'tcp' ? '' : ` ${p.healthCheck.path}`}` : null,
        p.memberCount ?? null,
      ]),
    ),
  members: (members: readonly Member[]) =>
    formatTable(
      ['POOL', 'NAME', 'ADDRESS', 'PORT', 'WEIGHT', 'STATE', 'BACKUP'],
      members.map((m) => [m.pool, m.name, m.address, m.port, m.weight, m.state, m.backup ? 'yes' : 'no']),
    ),
  routes: (routes: readonly Route[]) =>
    formatTable(
      ['VIP', 'NAME', 'PRIORITY', 'MATCH', 'POOL'],
      routes.map((r) => [r.vip, r.name, r.priority, r.match, r.pool]),
    ),
  certificates: (certs: readonly Certificate[]) =>
    formatTable(
      ['NAME', 'SANS', 'NOT-AFTER', 'FINGERPRINT'],
      certs.map((c) => [c.name, c.sans, c.notAfter, c.fingerprintSha256]),
    ),
} satisfies Record<Exclude<ResourceKind, 'tenants'>, (items: never) => string>;
