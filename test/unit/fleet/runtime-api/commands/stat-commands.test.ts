import { describe, expect, it } from 'vitest';
import { showInfo, showStat } from '../../../../../src/fleet/runtime-api/commands/stat-commands.js';

describe('stat command builders', () => {
  it('read process information', () => {
    expect(showInfo().line).toBe('show info');
  });

  it('scope show stat to one proxy, by name or id, object types and server id', () => {
    expect(showStat().line).toBe('show stat');
    expect(showStat({ proxy: 'be_t1' }).line).toBe('show stat be_t1 -1 -1');
    expect(showStat({ proxy: 3, types: ['server'] }).line).toBe('show stat 3 4 -1');
    expect(showStat({ proxy: 'fe', types: ['frontend', 'backend'], serverId: 2 }).line).toBe('show stat fe 3 2');
  });
});
