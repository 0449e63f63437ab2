import type { Command } from 'commander';
import type { Vip } from '../domain/vip.js';
import { ApiError, clientFromEnv, type ApiClient } from './api-client.js';
import type { Output } from './apply-reporter.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { resolveKind, type ResourceKind } from './get.js';
import { runCommand } from './run-command.js';
import { UsageError } from './usage-error.js';

export interface DeleteOptions {
  readonly tenant?: string;
  readonly vip?: string;
  readonly pool?: string;
  /** Tenants only: delete its VIPs first (the API refuses to delete a tenant that still has some). */
  readonly cascade: boolean;
}

export function registerDeleteCommand(program: Command, out: Output = process): void {
  program
    .command('delete')
    .description('delete a tenant (--cascade: its VIPs first) or one of its objects')
    .argument('<kind>', 'tenant, vip, pool, member, route or certificate')
    .argument('<name>', 'the object to delete')
    .option('-t, --tenant <tenant>', 'the tenant the object belongs to (all but tenant)')
    .option('--vip <vip>', 'route: the VIP it belongs to')
    .option('--pool <pool>', 'member: the pool it belongs to')
    .option(
      '--cascade',
      'tenant: delete its VIPs (and so their routes) first; its pools, members and certificates go with it',
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 deleted, 1 invalid arguments, 2 not found, refused or in use (409), 3 server or network error.',
    )
    .action(
      async (kind: string, name: string, opts: { tenant?: string; vip?: string; pool?: string; cascade?: boolean }) => {
        process.exitCode = await runCommand(out, () =>
          deleteResource(clientFromEnv(), resolveKind(kind), name, { ...opts, cascade: opts.cascade === true }, out),
        );
      },
    );
}

/** `switchyard delete`: one object, or a tenant with --cascade (VIPs first, then the tenant). */
export async function deleteResource(
  client: ApiClient,
  kind: ResourceKind,
  name: string,
  opts: DeleteOptions,
  out: Output,
): Promise<ExitCode> {
  if (kind === 'tenants') return deleteTenant(client, name, opts.cascade, out);
  if (opts.cascade) throw new UsageError('--cascade applies to tenants only');
  if (!opts.tenant)
    throw new UsageError(
      `give the tenant with -t TENANT (switchyard delete ${kind.replace(/s$/, '')} ${name} -t TENANT)`,
    );
  const base = `/v1/tenants/${encodeURIComponent(opts.tenant)}`;
  let path: string;
  if (kind === 'routes') {
    if (!opts.vip) throw new UsageError('give the VIP of the route with --vip VIP');
    path = `${base}/vips/${encodeURIComponent(opts.vip)}/routes/${encodeURIComponent(name)}`;
  } else if (kind === 'members') {
    if (!opts.pool) throw new UsageError('give the pool of the member with --pool POOL');
    path = `${base}/pools/${encodeURIComponent(opts.pool)}/members/${encodeURIComponent(name)}`;
  } else {
    path = `${base}/${kind}/${encodeURIComponent(name)}`;
  }
  const res = await client.send<{ revision: number }>({ method: 'DELETE', path });
  out.stdout.write(`deleted ${kind.replace(/s$/, '')} ${opts.tenant}/${name} at revision ${res.body.revision}\n`);
  return EXIT.ok;
}

async function deleteTenant(client: ApiClient, name: string, cascade: boolean, out: Output): Promise<ExitCode> {
  const base = `/v1/tenants/${encodeURIComponent(name)}`;
  if (cascade) {
    for (const vip of await client.list<Vip>(`${base}/vips`)) {
      // If-Match: a VIP changed since it was listed is someone's live work; stop rather than drop it.
      const res = await client.send<{ revision: number }>({
        method: 'DELETE',
        path: `${base}/vips/${encodeURIComponent(vip.name)}`,
        ifMatch: vip.revision,
      });
      out.stdout.write(`deleted vip ${name}/${vip.name} at revision ${res.body.revision}\n`);
    }
  }
  try {
    const res = await client.send<{ revision: number }>({ method: 'DELETE', path: base });
    out.stdout.write(`deleted tenant ${name} at revision ${res.body.revision}\n`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ApiError && err.failure === 'conflict' && !cascade) {
      throw new ApiError(
        'conflict',
        `${err.message}; or run: switchyard delete tenant ${name} --cascade`,
        err.request,
        err.status,
        err.code,
        err.details,
      );
    }
    throw err;
  }
}
