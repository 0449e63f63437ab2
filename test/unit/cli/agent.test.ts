import { describe, expect, it } from 'vitest';
import { parseAgentOptions, type AgentFlags } from '../../../src/cli/agent.js';
import { UsageError } from '../../../src/cli/usage-error.js';

describe('switchyard agent --control-plane', () => {
  const flags = (controlPlane: AgentFlags['controlPlane']): AgentFlags => ({
    controlPlane,
    node: 'edge-1',
    kind: 'nginx',
    configDir: '/etc/switchyard',
    masterSocket: '/run/m.sock',
    haproxyBin: 'haproxy',
    nginxBin: 'nginx',
    wait: '30',
    heartbeat: '10',
    reloadTimeout: '30',
    keepReleases: '5',
  });
  const env = { SWITCHYARD_AGENT_TOKEN: 'sy_x' };

  it('takes one URL as before', () => {
    expect(parseAgentOptions(flags('http://cp.internal:8080/'), env).controlPlanes).toEqual([
      'http://cp.internal:8080',
    ]);
  });

  it('takes the flag repeated, comma-separated lists, or both, in order', () => {
    expect(parseAgentOptions(flags(['https://a:8080', 'https://b:8080, https://c:8080']), env).controlPlanes).toEqual([
      'https://a:8080',
      'https://b:8080',
      'https://c:8080',
    ]);
  });

  it('names the flag and the bad value when one is not an http(s) URL, or is listed twice', () => {
    expect(() => parseAgentOptions(flags('http://a:8080,cp.internal'), env)).toThrow(UsageError);
    expect(() => parseAgentOptions(flags('http://a:8080,cp.internal'), env)).toThrow(
      /--control-plane .*"cp\.internal"/,
    );
    expect(() => parseAgentOptions(flags(['http://a:8080', 'ftp://b']), env)).toThrow(
      /--control-plane must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/b"/,
    );
    expect(() => parseAgentOptions(flags('http://a:8080,'), env)).toThrow(/--control-plane .*""/);
    expect(() => parseAgentOptions(flags(['http://a:8080', 'http://a:8080/']), env)).toThrow(
      '--control-plane lists http://a:8080 twice',
    );
  });
});
