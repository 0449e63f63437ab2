import { describe, expect, it } from 'vitest';
import {
  assertSendable,
  encodeCommand,
  MAX_PAYLOAD_BYTES,
  UnsafeArgumentError,
} from '../../../../../src/fleet/runtime-api/commands/runtime-command.js';
import { showInfo } from '../../../../../src/fleet/runtime-api/commands/stat-commands.js';

describe('runtimeCommand', () => {
  it('builds frozen values that target the worker CLI unless told otherwise', () => {
    const c = showInfo();
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.target).toBe('worker');
    expect(c.payload).toBeNull();
  });
});

describe('encodeCommand', () => {
  it('writes a command without payload as one line', () => {
    expect(encodeCommand(showInfo())).toBe('show info\n');
  });
});

describe('assertSendable', () => {
  const base = showInfo();

  it('refuses hand-made commands that would break the framing', () => {
    expect(() => assertSendable({ ...base, line: 'show info\nshow stat' })).toThrow(UnsafeArgumentError);
    expect(() => assertSendable({ ...base, line: '  ' })).toThrow(UnsafeArgumentError);
    expect(() => assertSendable({ ...base, line: 'add map /m <<', payload: 'a 1\n\nb 2' })).toThrow(
      UnsafeArgumentError,
    );
    expect(() => assertSendable({ ...base, line: 'add map /m', payload: 'a 1' })).toThrow(UnsafeArgumentError);
    expect(() => assertSendable(base)).not.toThrow();
  });

  it('refuses a payload larger than the CLI buffer, which would hang the HAProxy session', () => {
    const payload = Array.from({ length: 2000 }, (_, i) => `key${i} value${i}`).join('\n');
    expect(payload.length).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    expect(() => assertSendable({ ...base, line: 'add map /m <<', payload })).toThrow(/at most/);
  });
});
