import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { DedicatedClient } from '../../../src/db/dedicated-client.js';

describe('DedicatedClient', () => {
  it('when the server drops every connection, reports each failed attempt with the delay before the next, and keeps trying', async () => {
    // Accepts and hangs up at once, as a server that is shutting down does: no PostgreSQL needed.
    let attempts = 0;
    const server = createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const client = new DedicatedClient({
      url: `postgres://switchyard@127.0.0.1:${port}/switchyard`,
      applicationName: 'test',
      retryDelay: (failures) => failures * 5,
    });
    const downs: number[] = [];
    client.on('down', (_err, retryMs) => void downs.push(retryMs));
    client.on('up', () => expect.fail('no connection can come up'));
    try {
      await client.start();
      expect(downs).toEqual([5]);
      expect(client.connected).toBe(false);
      expect(client.client).toBeUndefined();
      await vi.waitFor(() => expect(downs.length).toBeGreaterThanOrEqual(3));
      expect(downs.slice(0, 3)).toEqual([5, 10, 15]);
      expect(attempts).toBeGreaterThanOrEqual(3);
    } finally {
      await client.stop();
      server.close();
    }
  });
});
