import { execFile } from 'node:child_process';

/**
 * The first line of `<bin> -v` (`HAProxy version 2.6.12-1 ...`, `nginx version: nginx/1.22.1`,
 * which nginx prints on stderr), trimmed to what a node report accepts; null when it cannot run.
 */
export function proxyVersion(bin: string, timeoutMs = 5_000): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(bin, ['-v'], { timeout: timeoutMs }, (_error, stdout, stderr) => {
      const line = `${stdout}\n${stderr}`
        .split('\n')
        .map((l) => l.replace(/\p{C}/gu, '').trim())
        .find((l) => l !== '');
      resolve(line === undefined ? null : line.slice(0, 200));
    });
  });
}
