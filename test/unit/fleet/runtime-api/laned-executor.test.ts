import { describe, expect, it } from 'vitest';
import { setFrontendMaxconn } from '../../../../src/fleet/runtime-api/commands/frontend-commands.js';
import { setMap } from '../../../../src/fleet/runtime-api/commands/map-commands.js';
import {
  addServer,
  enableServer,
  getWeight,
  setServerAddr,
  setServerWeight,
  showServersState,
} from '../../../../src/fleet/runtime-api/commands/server-commands.js';
import { LanedExecutor, assignLanes } from '../../../../src/fleet/runtime-api/laned-executor.js';
import type { RuntimeCommand } from '../../../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult, RuntimeExecutor } from '../../../../src/fleet/runtime-api/runtime-executor.js';

/** A lane that records what it was sent and answers each command with its own line. */
function recordingLane(): RuntimeExecutor & { readonly batches: string[][] } {
  const batches: string[][] = [];
  return {
    batches,
    async execute(commands: readonly RuntimeCommand[]): Promise<CommandResult[]> {
      batches.push(commands.map((c) => c.line));
      return commands.map((command) => ({ status: 'ok', command, output: command.line }) as CommandResult);
    },
  };
}

const weights = (backends: number, servers: number) =>
  Array.from({ length: backends * servers }, (_, i) =>
    setServerWeight(`be_${i % backends}`, `s${Math.floor(i / backends)}`, 1 + (i % 200)),
  );

describe('LanedExecutor', () => {
  it('when a batch is small, then it goes down the first connection alone, in order', async () => {
    const lanes = [recordingLane(), recordingLane()];
    const commands = weights(4, 10);
    await new LanedExecutor(lanes, 512).execute(commands);
    expect(lanes[0]!.batches).toEqual([commands.map((c) => c.line)]);
    expect(lanes[1]!.batches).toEqual([]);
  });

  it('when a batch is large, then it is split by backend, each backend in its order on one lane, and the results come back in the order given', async () => {
    const lanes = [recordingLane(), recordingLane()];
    const commands = [
      addServer('be_0', 'new', '10.0.0.9', 80),
      ...weights(10, 100),
      enableServer('be_0', 'new'),
      setMap('/etc/haproxy/maps/tenant-caps.map', 't1', '100'),
      setFrontendMaxconn('fe_t1_web', 50),
    ];
    const results = await new LanedExecutor(lanes, 512).execute(commands);
    expect(results.map((r) => r.command.line)).toEqual(commands.map((c) => c.line));
    const sent = lanes.map((l) => l.batches.flat());
    expect(sent[0]!.length + sent[1]!.length).toBe(commands.length);
    expect(Math.abs(sent[0]!.length - sent[1]!.length)).toBeLessThanOrEqual(101);
    for (let b = 0; b < 10; b++) {
      const lane = sent.findIndex((lines) => lines.some((l) => l.includes(`be_${b}/`)));
      const original = commands.map((c) => c.line).filter((l) => l.includes(`be_${b}/`));
      expect(sent[lane]!.filter((l) => l.includes(`be_${b}/`))).toEqual(original);
      expect(sent[1 - lane]!.some((l) => l.includes(`be_${b}/`))).toBe(false);
    }
    // Maps and frontends stay on the first lane, in their order.
    expect(sent[0]!.filter((l) => !l.includes('/s') && !l.includes('/new'))).toEqual([
      'set map /etc/haproxy/maps/tenant-caps.map t1 100',
      'set maxconn frontend fe_t1_web 50',
    ]);
  });

  it('when a lane fails, then only its commands report the failure', async () => {
    const failing: RuntimeExecutor = {
      async execute(commands) {
        return commands.map(
          (command) => ({ status: 'not-executed', command, message: 'connection refused' }) as CommandResult,
        );
      },
    };
    const results = await new LanedExecutor([recordingLane(), failing], 2).execute(weights(2, 2));
    expect(results.filter((r) => r.status === 'ok')).toHaveLength(2);
    expect(results.filter((r) => r.status === 'not-executed')).toHaveLength(2);
  });

  it('warm() opens every lane but the first, which every batch uses anyway', () => {
    const warmed: number[] = [];
    const lanes = [0, 1, 2].map((n) => ({ ...recordingLane(), warm: () => warmed.push(n) }));
    new LanedExecutor(lanes).warm();
    expect(warmed).toEqual([1, 2]);
  });

  it('assigns lanes deterministically, largest backends first onto the least-loaded lane', () => {
    const commands = [
      ...weights(1, 6).map((c) => c),
      ...Array.from({ length: 3 }, (_, i) => setServerWeight('be_b', `s${i}`, 1)),
      ...Array.from({ length: 3 }, (_, i) => setServerWeight('be_c', `s${i}`, 1)),
    ];
    expect(assignLanes(commands, 2)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    expect(assignLanes(commands, 2)).toEqual(assignLanes(commands, 2));
  });

  it('keeps reads and address moves of a backend with its other commands, and reads of every server on the first lane', () => {
    const commands = [
      ...weights(1, 4),
      setServerAddr('be_b', 's1', '10.0.0.1', 8080),
      showServersState('be_b'),
      getWeight('be_b', 's1'),
      showServersState(),
    ];
    // The full read counts against the first lane, so the larger backend goes to the second.
    expect(assignLanes(commands, 2)).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
  });
});
