import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { NodeKind } from '../domain/node.js';
import { DEFAULT_CONFIG_DIR } from '../domain/node.js';
import type { RenderedFiles } from '../domain/snapshot.js';
import type { HeldTenant } from '../db/config-repository.js';
import type { Services } from '../services/services.js';
import { UsageError } from './usage-error.js';

export interface RenderOptions {
  readonly kind?: NodeKind;
  readonly out: string;
  readonly node?: string;
  readonly configDir?: string;
}

/**
 * `switchyard render`: writes a node's files (--node: exactly what its agent would get, and the
 * version is stored) or, without --node, every active tenant rendered for a node of --kind.
 * Returns the tenants that were held back so the caller can pick the exit code.
 */
export async function renderCommand(
  services: Services,
  opts: RenderOptions,
): Promise<{ written: string[]; held: readonly HeldTenant[]; revision: number }> {
  let files: RenderedFiles;
  let held: readonly HeldTenant[];
  let revision: number;
  if (opts.node) {
    const config = await services.configs.build(opts.node);
    if (opts.kind && opts.kind !== config.kind)
      throw new UsageError(`node ${opts.node} is ${config.kind}, not ${opts.kind}`);
    ({ files, heldTenants: held, revision } = config);
  } else {
    if (!opts.kind) throw new UsageError('give --kind haproxy|nginx (or --node NAME)');
    const settings = {
      name: 'render',
      kind: opts.kind,
      runtimeAddress: null,
      capacity: { vcpu: 64, memoryMb: 65_536 },
      configDir: opts.configDir ?? DEFAULT_CONFIG_DIR,
    };
    ({ files, heldTenants: held, revision } = await services.configs.renderFor(settings));
  }
  const out = resolve(opts.out);
  const written: string[] = [];
  for (const name of Object.keys(files).sort()) {
    const path = join(out, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, files[name]!, { mode: 0o600 });
    written.push(path);
  }
  return { written, held, revision };
}
