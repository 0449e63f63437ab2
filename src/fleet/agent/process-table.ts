import { readFile, readdir } from 'node:fs/promises';

/** `/proc/<pid>/stat` → pid and parent pid. The command name is in parentheses and may hold spaces or `)`. */
export function parseProcStat(text: string): { readonly pid: number; readonly ppid: number } | null {
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  const fields = text.slice(close + 2).split(' ');
  const ppid = Number(fields[1]);
  if (close < 0 || !Number.isInteger(pid) || !Number.isInteger(ppid)) return null;
  return { pid, ppid };
}

/** A process title as `ps` shows it: nginx overwrites argv, leaving NULs and padding behind. */
export function processTitle(cmdline: string): string {
  return cmdline.replace(/\0+/g, ' ').trim();
}

/** The title of a running process, or null when it is gone (or not ours to read). */
export async function readProcessTitle(pid: number): Promise<string | null> {
  return readFile(`/proc/${pid}/cmdline`, 'utf8').then(processTitle, () => null);
}

/** Children of `ppid` with their titles, from /proc (Linux). Processes that exit meanwhile are skipped. */
export async function childProcesses(ppid: number): Promise<{ pid: number; title: string }[]> {
  const out: { pid: number; title: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').then(parseProcStat, () => null);
    if (stat?.ppid !== ppid) continue;
    const title = await readProcessTitle(stat.pid);
    if (title !== null) out.push({ pid: stat.pid, title });
  }
  return out;
}
