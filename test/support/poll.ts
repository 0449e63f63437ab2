/**
 * Calls `probe` every `interval` ms until it answers a value other than undefined (a throw also
 * means "not yet"), for at most `timeout` ms; answers that value, or rejects with the last error.
 *
 * Tests wait with `vi.waitFor`/`expect.poll`. This one is for the support code that the benchmarks
 * share with the tests (starting proxies, waiting for a reload): it must run outside a vitest
 * worker too, where `vi` has no state. It waits on real processes, so real time is right.
 */
export async function poll<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  { timeout, interval }: { timeout: number; interval: number },
): Promise<T> {
  const deadline = performance.now() + timeout;
  let last: unknown = new Error('no value yet');
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (performance.now() >= deadline) throw last;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
