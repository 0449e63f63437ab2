import { describe, expect, it } from 'vitest';
import { checkVerdict } from '../../../../src/fleet/replies/check-verdict.js';

describe('checkVerdict', () => {
  it('decodes the check verdict only while the check is enabled and not paused, as show stat prints it', () => {
    // srv_check_state: 0x02 configured, 0x04 enabled, 0x08 paused (maintenance), 0x01 in progress.
    expect(checkVerdict(0x06, 15)).toEqual({ status: 'L7OK', description: 'Layer7 check passed' });
    expect(checkVerdict(0x07, 8)).toEqual({ status: 'L4CON', description: 'Layer4 connection problem' });
    expect(checkVerdict(0x0e, 15)).toBeNull(); // maintenance pauses the check
    expect(checkVerdict(0x02, 15)).toBeNull(); // `disable health`, or an added server before `enable health`
    expect(checkVerdict(0x00, 1)).toBeNull(); // no check
    expect(checkVerdict(0x06, 16)).toEqual({ status: 'L7OKC', description: 'Layer7 check conditionally passed' });
    expect(checkVerdict(0x06, 99)).toEqual({ status: 'UNK', description: 'Unknown' });
  });
});
