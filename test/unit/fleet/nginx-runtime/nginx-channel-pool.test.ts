import { describe, expect, it } from 'vitest';
import { NginxChannelPool } from '../../../../src/fleet/nginx-runtime/nginx-channel-pool.js';
import { RuntimeClientTls } from '../../../../src/fleet/runtime-api/connection/runtime-client-tls.js';

/** One client per NGINX node, shared by its callers, replaced when the node's address moves. */

const at = (port: number) => ({ host: '127.0.0.1', port });

describe('the pool of NGINX runtime channels', () => {
  it('hands every caller the same client for a node, and a new one when its runtime address moves', async () => {
    const pool = new NginxChannelPool(new RuntimeClientTls());
    const first = pool.channel('edge-1', at(9443));
    expect(pool.channel('edge-1', at(9443))).toBe(first);
    const moved = pool.channel('edge-1', at(9444));
    expect(moved).not.toBe(first);
    // The old client was closed: it fails at once, without trying to connect.
    await expect(first.held()).rejects.toThrow(/is closed/);
    pool.close();
  });

  it('closes the clients of nodes that are gone, and after close fails every call at once', async () => {
    const pool = new NginxChannelPool(new RuntimeClientTls());
    const gone = pool.channel('edge-1', at(9443));
    const kept = pool.channel('edge-2', at(9443));
    pool.retain(new Set(['edge-2']));
    await expect(gone.held()).rejects.toThrow(/is closed/);
    expect(pool.channel('edge-2', at(9443))).toBe(kept);
    pool.close();
    await expect(kept.held()).rejects.toThrow(/is closed/);
    await expect(pool.channel('edge-3', at(9443)).stats()).rejects.toThrow(/control plane is stopping/);
  });
});
