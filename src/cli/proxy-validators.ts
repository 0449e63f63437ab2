import type { NodeKind } from '../domain/node.js';
import type { ProxyValidator } from '../fleet/agent/proxy-validator.js';
import { retargetFiles, retargetText } from '../fleet/agent/retarget-files.js';
import { validateHaproxy } from '../render/validate-haproxy.js';
import { validateNginx } from '../render/validate-nginx.js';

export interface ValidatorOptions {
  readonly haproxyBin?: string;
  readonly nginxBin?: string;
  readonly timeoutMs?: number;
}

export function createProxyValidator(kind: NodeKind, options: ValidatorOptions = {}): ProxyValidator {
  return kind === 'haproxy' ? haproxyValidator(options) : nginxValidator(options);
}

/**
 * `haproxy -c` on a copy whose configDir paths point at the scratch directory: the files name
 * maps and certificates by absolute path, and the check must read the new ones, not the ones
 * the proxy runs. Messages are mapped back, so they name the paths the operator knows.
 */
function haproxyValidator(options: ValidatorOptions): ProxyValidator {
  return {
    async validate(files, configDir, scratchDir) {
      const verdict = await validateHaproxy(retargetFiles(files, configDir, scratchDir), scratchDir, {
        binary: options.haproxyBin ?? 'haproxy',
        timeoutMs: options.timeoutMs ?? 60_000,
      });
      return verdict.ok
        ? { ok: true, output: retargetText(verdict.output, scratchDir, configDir) }
        : { ok: false, message: retargetText(verdict.message, scratchDir, configDir) };
    },
  };
}

/** `nginx -t` in a private network namespace; validateNginx retargets nginx.conf itself. */
function nginxValidator(options: ValidatorOptions): ProxyValidator {
  return {
    async validate(files, configDir) {
      try {
        const verdict = await validateNginx(files, configDir, {
          nginxBin: options.nginxBin ?? 'nginx',
          timeoutMs: options.timeoutMs ?? 60_000,
        });
        return verdict.ok ? { ok: true, output: verdict.warnings.join('\n') } : { ok: false, message: verdict.message };
      } catch (error) {
        // The validator itself could not run: nothing unproven is swapped in.
        return { ok: false, message: `cannot validate with nginx -t: ${(error as Error).message}` };
      }
    },
  };
}
