import { describe, expect, it } from 'vitest';
import { withReloadGeneration } from '../../../../src/services/config/reload-generation.js';

describe('withReloadGeneration', () => {
  it('when the files hold a HAProxy config, then its first segment says the generation and the rest are kept', () => {
    const files = { 'haproxy.cfg': ['global\n', 'backend be_a\n'], 'maps/hosts.map': ['a 1\n'] };
    const out = withReloadGeneration(files, 3);
    expect(out['haproxy.cfg']).toEqual([
      '# reload generation 3: requested for a change the Runtime API cannot make safely\n',
      'global\n',
      'backend be_a\n',
    ]);
    expect(out['maps/hosts.map']).toBe(files['maps/hosts.map']);
    expect(files['haproxy.cfg']).toHaveLength(2);
  });

  it('when there is no HAProxy config, then the files are answered as they are', () => {
    const files = { 'nginx.conf': ['events {}\n'] };
    expect(withReloadGeneration(files, 3)).toBe(files);
  });
});
