import type { RenderedFiles } from '../../domain/snapshot.js';

const KEY_BLOCK_RE = /-----BEGIN ((?:[A-Z]+ )?PRIVATE KEY)-----[\s\S]*?-----END \1-----\n?/g;

/** Previews show everything but private keys. */
export function withholdKeys(files: RenderedFiles): RenderedFiles {
  return Object.fromEntries(
    Object.entries(files).map(([name, content]) => [name, content.replace(KEY_BLOCK_RE, '# private key withheld\n')]),
  );
}
