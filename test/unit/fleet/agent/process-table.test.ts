import { describe, expect, it } from 'vitest';
import { parseProcStat, processTitle } from '../../../../src/fleet/agent/process-table.js';

describe('the process table', () => {
  it('reads pid and parent from /proc/<pid>/stat even when the name holds spaces and parentheses', () => {
    expect(parseProcStat('4242 (nginx: a) b) S 4200 4242 4242 0 -1')).toEqual({ pid: 4242, ppid: 4200 });
    expect(parseProcStat('garbage')).toBeNull();
  });

  it('turns an overwritten argv into the title ps shows', () => {
    expect(processTitle('nginx: worker process\0\0\0\0')).toBe('nginx: worker process');
    expect(processTitle('nginx: master process nginx -c /etc/sy/nginx.conf\0')).toBe(
      'nginx: master process nginx -c /etc/sy/nginx.conf',
    );
  });
});
