export type ReloadOutcome =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly message: string };

/** Where a release is in the swap, for the reloader's own preparations. */
export interface SwapContext {
  /** The new release, staged but not yet active: add files the proxy needs from the running one. */
  readonly stagedDir: string;
  /** The release the proxy runs now, or null. */
  readonly activeDir: string | null;
  /** Whether a reload follows the swap. */
  readonly reload: boolean;
}

/**
 * Reloads a proxy after its files were swapped, and proves it worked. Implementations never
 * throw for a refused reload: they say so in the outcome, with the proxy's own words.
 */
export interface ProxyReloader {
  /** Whether a proxy is running that a reload would reach. */
  running(): Promise<boolean>;
  /** Called before the swap: carries over state files (HAProxy server state, NGINX pid file). */
  prepare(context: SwapContext): Promise<void>;
  /** Reloads the proxy from the now active files; `previousDir` is the release it ran until now. */
  reload(previousDir: string | null): Promise<ReloadOutcome>;
}
