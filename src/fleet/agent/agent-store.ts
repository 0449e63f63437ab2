import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { KEEPALIVED_FILES } from '../../domain/config-files.js';
import type { NodeKind } from '../../domain/node.js';
import type { RenderedFiles } from '../../domain/snapshot.js';
import type { Logger } from '../../logger.js';
import { ConfigDirLock } from './config-dir-lock.js';
import {
  adoptedReleaseName,
  failedReleaseName,
  releaseName,
  releasesDirOf,
  releasesToPrune,
  type PrunePolicy,
} from './release-names.js';

/** Written into every release: what it holds, so a restarted agent knows what runs. */
export interface ReleaseManifest {
  readonly node: string;
  readonly kind: NodeKind;
  readonly revision: number;
  readonly contentHash: string;
  readonly structuralHash: string;
  readonly stagedAt: string;
}

export interface Release {
  /** The symlink's text, to put back exactly on rollback. */
  readonly link: string;
  /** The directory it points to. */
  readonly dir: string;
  /** The release name when the directory is one of ours, else null. */
  readonly name: string | null;
  /** Null for a directory the agent adopted or does not manage. */
  readonly manifest: ReleaseManifest | null;
}

/** The note `beginSwap` leaves: the symlink text to put back (null: no release was active), and what was swapped in. */
interface SwapJournal {
  readonly previous: string | null;
  readonly release: string;
  readonly at: string;
}

export const MANIFEST_FILE = '.switchyard-release.json';
/** In the releases directory while a swapped-in release waits for the proxy's verdict on its reload. */
export const SWAP_JOURNAL = '.swap-in-progress.json';
const STAGING_PREFIX = '.staging-';
const SCRATCH_PREFIX = '.validate-';

/**
 * The node's files on disk. `configDir` is a symlink to `<configDir>.releases/<release>`; a new
 * release is written beside the active one and swapped in by renaming a fresh symlink over
 * `configDir` (rename(2) is atomic), so the proxy only ever sees the old files or the new ones,
 * never a mix. Every path the files name goes through the symlink, so one rename moves them all.
 */
export class AgentStore {
  readonly releasesDir: string;
  private readonly lock: ConfigDirLock;

  constructor(
    readonly configDir: string,
    private readonly logger: Logger,
  ) {
    this.releasesDir = releasesDirOf(configDir);
    this.lock = new ConfigDirLock(this.releasesDir, configDir);
  }

  /**
   * Creates the releases directory and takes its lock (one agent per configDir: throws
   * ConfigDirLockedError, touching nothing, while another live agent holds it), then removes what
   * a crash mid-apply left behind, and adopts a plain directory at configDir (files put there
   * before the agent ran) as the first release.
   */
  async init(): Promise<void> {
    // 0755: nginx workers run unprivileged and must reach their temp directories through here.
    await mkdir(this.releasesDir, { recursive: true, mode: 0o755 });
    const { replaced } = await this.lock.acquire();
    if (replaced !== null) {
      this.logger.warn(
        { lock: this.lock.path, deadHolder: replaced },
        'took over the config directory lock of an agent that is no longer running',
      );
    }
    for (const entry of await readdir(this.releasesDir)) {
      if (entry.startsWith(STAGING_PREFIX) || entry.startsWith(SCRATCH_PREFIX))
        await rm(join(this.releasesDir, entry), { recursive: true, force: true });
    }
    await this.undoInterruptedSwap();
    const stat = await lstat(this.configDir).catch(notFound);
    if (stat === null || stat.isSymbolicLink()) return;
    if (!stat.isDirectory()) throw new Error(`${this.configDir} is neither a directory nor a symlink: move it away`);
    const name = adoptedReleaseName(new Date());
    await rename(this.configDir, join(this.releasesDir, name));
    await this.activate(this.linkTo(name));
    this.logger.warn(
      { configDir: this.configDir, release: name },
      'adopted the existing directory as a release; configDir is now a symlink the agent manages',
    );
  }

  /**
   * Notes, before swapping in a release whose reload decides whether it stays, the release to put
   * back (`previous`). Until `endSwap`, an agent that dies leaves the note, and the next one puts
   * `previous` back at start (`init`) rather than take files the proxy may have refused for what runs.
   */
  async beginSwap(previous: Release | null, release: string): Promise<void> {
    const journal: SwapJournal = { previous: previous?.link ?? null, release, at: new Date().toISOString() };
    await writeFileIn(this.releasesDir, SWAP_JOURNAL, `${JSON.stringify(journal)}\n`);
    await syncDir(this.releasesDir);
  }

  /** The proxy's verdict is in (and a refused release was put back): nothing to undo at the next start. */
  async endSwap(): Promise<void> {
    await rm(join(this.releasesDir, SWAP_JOURNAL), { force: true });
    await syncDir(this.releasesDir);
  }

  /**
   * What a crash between a swap and the proxy's verdict left: configDir on a release the proxy may
   * have refused (it then still serves the previous one) or loaded. Putting the previous release
   * back is right either way: the agent's first poll then finds the control plane's config differs
   * from it and applies it again, reloading the proxy onto files it has now judged.
   */
  private async undoInterruptedSwap(): Promise<void> {
    const path = join(this.releasesDir, SWAP_JOURNAL);
    const text = await readFile(path, 'utf8').catch(notFound);
    if (text === null) return;
    let journal: SwapJournal | null = null;
    try {
      journal = JSON.parse(text) as SwapJournal;
    } catch {
      // Cut short while written: the swap it announced never began.
    }
    if (journal !== null) {
      await this.activate(journal.previous);
      this.logger.warn(
        { release: journal.release, since: journal.at, restored: journal.previous },
        "the last agent stopped between swapping in a release and the proxy's verdict on its reload: the previous release is active again, and the control plane's config is applied anew",
      );
    }
    await this.endSwap();
  }

  /** Gives the config directory up for another agent (when this one stops). */
  async close(): Promise<void> {
    await this.lock.release();
  }

  /** The active release, or null before the first apply. */
  async current(): Promise<Release | null> {
    const link = await readlink(this.configDir).catch(notFound);
    if (link === null) return null;
    const dir = resolve(dirname(this.configDir), link);
    const name = dirname(dir) === this.releasesDir ? basename(dir) : null;
    const manifest = await readFile(join(dir, MANIFEST_FILE), 'utf8').then(
      (text) => JSON.parse(text) as ReleaseManifest,
      () => null,
    );
    return { link, dir, name, manifest };
  }

  /** A release name not yet taken. */
  async newName(contentHash: string, now = new Date()): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const name = releaseName(contentHash, now, attempt);
      const taken = await lstat(join(this.releasesDir, name)).then(
        () => true,
        () => false,
      );
      if (!taken) return name;
    }
  }

  /** Writes the files and the manifest to a staging directory; returns its path. */
  async stage(name: string, files: RenderedFiles, manifest: ReleaseManifest): Promise<string> {
    const dir = join(this.releasesDir, `${STAGING_PREFIX}${name}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o755 });
    for (const [file, content] of Object.entries(files)) await writeFileIn(dir, file, content);
    await writeFileIn(dir, MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`);
    return dir;
  }

  /** A scratch directory path (not created) for validating a copy of the files. */
  scratchDir(): string {
    return join(this.releasesDir, `${SCRATCH_PREFIX}${randomBytes(6).toString('hex')}`);
  }

  /** Moves a finished staging directory to its release name; returns the release directory. */
  async commit(stagingDir: string, name: string): Promise<string> {
    const dir = join(this.releasesDir, name);
    await rename(stagingDir, dir);
    await syncDir(this.releasesDir);
    return dir;
  }

  /** The symlink text for a release: relative, so the tree can be moved or inspected from a chroot. */
  linkTo(name: string): string {
    return relative(dirname(this.configDir), join(this.releasesDir, name));
  }

  /** Points configDir at `link` atomically (a fresh symlink renamed over it); null removes it. */
  async activate(link: string | null): Promise<void> {
    if (link === null) {
      await rm(this.configDir, { force: true });
      return;
    }
    const temp = `${this.configDir}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    await symlink(link, temp);
    try {
      await rename(temp, this.configDir);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await syncDir(dirname(this.configDir));
  }

  /** Keeps a rejected release (staged or committed) as `<name>.failed` for inspection; returns its path. */
  async keepFailed(dir: string, name: string): Promise<string> {
    const target = join(this.releasesDir, failedReleaseName(name));
    await rm(target, { recursive: true, force: true });
    await rename(dir, target);
    return target;
  }

  /** Removes old releases; never the ones in `policy.protect`. Returns the names removed. */
  async prune(policy: PrunePolicy): Promise<string[]> {
    const doomed = releasesToPrune(await readdir(this.releasesDir), policy);
    for (const name of doomed) await rm(join(this.releasesDir, name), { recursive: true, force: true });
    return doomed;
  }
}

/** Private keys (HAProxy .pem bundles, NGINX .key) and keepalived.conf (its VRRP secrets) are readable by root alone. */
function modeFor(file: string): number {
  return /\.(?:pem|key)$/.test(file) || file === KEEPALIVED_FILES.config ? 0o600 : 0o644;
}

/** Writes and fsyncs one file below `dir`; the name was checked (relative, no `..`) before it got here. */
export async function writeFileIn(dir: string, file: string, content: string): Promise<void> {
  const path = join(dir, file);
  if (!path.startsWith(`${dir}/`)) throw new Error(`refusing to write ${JSON.stringify(file)} outside ${dir}`);
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const handle = await open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    modeFor(file),
  );
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename durable: without it a power cut can bring back the old directory entry. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY).catch(() => null);
  if (handle === null) return;
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    await handle.close();
  }
}

function notFound(error: NodeJS.ErrnoException): null {
  if (error.code === 'ENOENT' || error.code === 'EINVAL') return null;
  throw error;
}
