import type { RenderedFiles } from '../../domain/snapshot.js';

/** The characters a configDir (and every path the renderers print) is made of; see `configDir` in domain/node.ts. */
const PATH_CHAR = 'A-Za-z0-9._/-';

/**
 * Rewrites every absolute path under `from` into the same path under `to`, in every file, so a
 * copy of a node's files can be checked somewhere other than where they will live. A textual
 * replacement is safe because configDir is limited to [A-Za-z0-9._/-]: a match must start where
 * a path starts (not inside a longer one) and continue with `/`, so `/etc/sy` never touches
 * `/etc/sy2/x` or `/etc/sy.releases/x`. File names (keys) are relative and stay as they are.
 */
export function retargetFiles(files: RenderedFiles, from: string, to: string): RenderedFiles {
  const out: Record<string, string> = {};
  for (const [name, content] of Object.entries(files)) out[name] = retargetText(content, from, to);
  return out;
}

/** The same rewrite for one text: a file, or a validator's message mapped back to the real paths. */
export function retargetText(text: string, from: string, to: string): string {
  const source = trimSlash(from);
  const target = trimSlash(to);
  if (source === target) return text;
  const escaped = source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`(?<![${PATH_CHAR}])${escaped}(?=/|(?![${PATH_CHAR}]))`, 'g'), target);
}

function trimSlash(dir: string): string {
  return dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
}
