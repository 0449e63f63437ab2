/**
 * HAProxy 2.6's check verdicts (`enum healthcheck_status`) as `show stat` names and describes
 * them in check_status and check_desc. `show servers state` prints the number (srv_check_status);
 * the table was checked against a live 2.6 worker for L4OK, L4CON, L6RSP, L7TOUT, L7RSP, L7OK,
 * L7OKC and L7STS. Null entries are markers HAProxy never stores as a verdict.
 */
const CHECK_VERDICTS: readonly (readonly [string, string] | null)[] = [
  ['UNK', 'Unknown'],
  ['INI', 'Initializing'],
  null, // START
  ['CHECKED', 'No status change'],
  ['HANA', 'Health analyze'],
  ['SOCKERR', 'Socket error'],
  ['L4OK', 'Layer4 check passed'],
  ['L4TOUT', 'Layer4 timeout'],
  ['L4CON', 'Layer4 connection problem'],
  ['L6OK', 'Layer6 check passed'],
  ['L6TOUT', 'Layer6 timeout'],
  ['L6RSP', 'Layer6 invalid response'],
  ['L7TOUT', 'Layer7 timeout'],
  ['L7RSP', 'Layer7 invalid response'],
  null, // L57DATA
  ['L7OK', 'Layer7 check passed'],
  ['L7OKC', 'Layer7 check conditionally passed'],
  ['L7STS', 'Layer7 wrong status'],
  ['PROCERR', 'External check error'],
  ['PROCTOUT', 'External check timeout'],
  ['PROCOK', 'External check passed'],
];

// srv_check_state is the check's state flags (CHK_ST_*), masked with 0x0F.
const CHK_ST_ENABLED = 0x04;
const CHK_ST_PAUSED = 0x08;

/**
 * The verdict `show stat` would print for a server's check: it prints one only while the check is
 * enabled and not paused (a server in maintenance pauses it; `disable health` turns it off).
 */
export function checkVerdict(
  checkState: number,
  checkStatus: number,
): { readonly status: string; readonly description: string } | null {
  if ((checkState & (CHK_ST_ENABLED | CHK_ST_PAUSED)) !== CHK_ST_ENABLED) return null;
  return VERDICTS[checkStatus] ?? VERDICTS[0]!;
}

/** One frozen object per verdict, shared by every server that reports it. */
const VERDICTS = CHECK_VERDICTS.map((v) => (v === null ? null : Object.freeze({ status: v[0], description: v[1] })));
