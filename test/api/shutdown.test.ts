import { describe, expect, it } from 'vitest';
import { startTestApp } from '../support/app.js';

describe('stopping the control plane', () => {
  it('answers waiting long polls at once instead of holding shutdown for their wait', async () => {
    const app = await startTestApp();
    await app.admin('POST', '/v1/nodes', { name: 'n1', kind: 'nginx', capacity: { vcpu: 1, memoryMb: 512 } });
    const agent = app.as(await app.token('agent', { node: 'n1' }));
    const first = await agent('GET', '/v1/nodes/n1/config');
    const polling = agent('GET', '/v1/nodes/n1/config?wait=60', undefined, { 'if-none-match': first.headers.get('etag')! });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await app.stop();
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await polling).status).toBe(304);
  });
});
