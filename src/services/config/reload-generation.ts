import type { SegmentedFiles } from '../../domain/snapshot.js';

/**
 * The files with the node's reload generation in a comment at the top of the main config: the
 * agent fetches a version whose bytes changed and reloads when its structural hash did, so a
 * requested reload needs both to move (the raised cap itself is already in the files).
 */
export function withReloadGeneration(files: SegmentedFiles, generation: number): SegmentedFiles {
  const parts = files['haproxy.cfg'];
  if (parts === undefined) return files;
  return {
    ...files,
    'haproxy.cfg': [
      `# reload generation ${generation}: requested for a change the Runtime API cannot make safely\n`,
      ...parts,
    ],
  };
}
