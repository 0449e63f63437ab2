import type { RenderedFiles } from '../../domain/snapshot.js';
import type { Result } from '../../util/result.js';

/**
 * Checks a node's files with the real binary before they are swapped in. Never throws for a bad
 * config. The agent's port: the implementations (haproxy -c, nginx -t) are the renderers'
 * validators, wired in by the CLI (cli/proxy-validators.ts).
 */
export interface ProxyValidator {
  /** `files` as rendered for `configDir`; `scratchDir` is a path that does not exist yet, on the same disk. */
  validate(files: RenderedFiles, configDir: string, scratchDir: string): Promise<Result>;
}
