import { describe, expect, it } from 'vitest';
import {
  addMap,
  addMapEntries,
  clearMap,
  commitMap,
  delMap,
  prepareMap,
  setMap,
  showMap,
} from '../../../../../src/fleet/runtime-api/commands/map-commands.js';
import { UnsafeArgumentError } from '../../../../../src/fleet/runtime-api/commands/runtime-command.js';

describe('map command builders', () => {
  it('format map commands, versioned ones for atomic replacement included', () => {
    expect(addMap('/etc/haproxy/hosts.map', 'app.example.com', 'be_t1').line).toBe(
      'add map /etc/haproxy/hosts.map app.example.com be_t1',
    );
    expect(setMap('/etc/haproxy/rl.map', 't1', '20').line).toBe('set map /etc/haproxy/rl.map t1 20');
    expect(delMap('/etc/haproxy/rl.map', 't1').line).toBe('del map /etc/haproxy/rl.map t1');
    expect(clearMap('/m.map').line).toBe('clear map /m.map');
    expect(showMap('/m.map').line).toBe('show map /m.map');
    expect(showMap('/m.map', 4).line).toBe('show map @4 /m.map');
    expect(showMap('#2').line).toBe('show map #2');
    expect(prepareMap('/m.map').line).toBe('prepare map /m.map');
    expect(addMap('/m.map', 'k', 'v', 4).line).toBe('add map @4 /m.map k v');
    expect(commitMap('/m.map', 4).line).toBe('commit map @4 /m.map');
    const bulk = addMapEntries(
      '/m.map',
      [
        ['a', '1'],
        ['b', '2'],
      ],
      4,
    );
    expect(bulk.line).toBe('add map @4 /m.map <<');
    expect(bulk.payload).toBe('a 1\nb 2');
  });

  it('refuse map files, keys and values that could smuggle a second command', () => {
    const refuses = (build: () => unknown): void => expect(build).toThrow(UnsafeArgumentError);
    refuses(() => addMap('relative.map', 'k', 'v'));
    refuses(() => addMap('/a b.map', 'k', 'v'));
    refuses(() => addMap('/etc/../m.map', 'k', 'v'));
    refuses(() => addMap('/m.map', 'k;show info', 'v'));
    refuses(() => addMap('/m.map', 'k', 'two words'));
    refuses(() => addMap('/m.map', 'k', 'v\nshow info'));
    refuses(() => addMap('/m.map', 'k\\', 'v'));
    refuses(() => addMap('/m.map', 'k', "'v'"));
    refuses(() => addMap('/m.map', 'k', ''));
    refuses(() => addMap('/m.map', 'k', 'ü'));
    refuses(() => addMapEntries('/m.map', []));
    refuses(() => addMapEntries('/m.map', [['k', 'v\n']]));
    refuses(() => commitMap('/m.map', -1));
  });
});
