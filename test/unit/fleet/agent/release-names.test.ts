import { describe, expect, it } from 'vitest';
import {
  adoptedReleaseName,
  failedReleaseName,
  isFailedReleaseName,
  isReleaseName,
  releaseName,
  releasesDirOf,
  releasesToPrune,
} from '../../../../src/fleet/agent/release-names.js';

const HASH = 'ab'.repeat(32);
const at = (ms: number) => new Date(Date.UTC(2026, 10, 26, 15, 48, 1) + ms);

describe('release names', () => {
  it('are the UTC time to the millisecond and a hash prefix, and sort by age', () => {
    expect(releaseName(HASH, at(123))).toBe('20261126T154801123Z-abababababababab');
    expect(releaseName(HASH, at(123), 2)).toBe('20261126T154801123Z-abababababababab-2');
    const names = [releaseName(HASH, at(2000)), releaseName(HASH, at(5)), adoptedReleaseName(at(0))];
    expect([...names].sort()).toEqual([
      adoptedReleaseName(at(0)),
      releaseName(HASH, at(5)),
      releaseName(HASH, at(2000)),
    ]);
  });

  it('refuse anything but a content hash', () => {
    expect(() => releaseName('../etc', at(0))).toThrow(/not a content hash/);
  });

  it('live beside configDir, and failed ones carry .failed', () => {
    expect(releasesDirOf('/etc/switchyard/')).toBe('/etc/switchyard.releases');
    const name = releaseName(HASH, at(0));
    expect(isReleaseName(name)).toBe(true);
    expect(isFailedReleaseName(failedReleaseName(name))).toBe(true);
    expect(isReleaseName(failedReleaseName(name))).toBe(false);
    expect(isReleaseName('.staging-x')).toBe(false);
  });
});

describe('pruning releases', () => {
  const good = Array.from({ length: 8 }, (_, i) => releaseName(HASH, at(i * 1000)));
  const failed = good.slice(0, 5).map(failedReleaseName);

  it('keeps the newest good and failed ones, and never the protected ones', () => {
    const doomed = releasesToPrune([...good, ...failed, 'README', '.staging-x'], {
      keep: 3,
      keepFailed: 2,
      protect: [good[0]!, null],
    });
    expect(doomed).toEqual([...good.slice(1, 5), ...failed.slice(0, 3)].sort());
  });

  it('leaves files it does not know alone, even when they look close', () => {
    expect(releasesToPrune(['notes.txt', 'x.failed', '.validate-1'], { keep: 0, keepFailed: 0, protect: [] })).toEqual(
      [],
    );
  });
});
