/**
 * Exit codes CI can rely on, shared by every command: 0 done (or nothing to do), 1 invalid input
 * (arguments, files, schema, a 400), 2 conflict or refused (401/403/404/409/412), 3 server or
 * network error.
 */
export const EXIT = { ok: 0, invalidInput: 1, conflict: 2, serverError: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The worst of several outcomes: a run that hit a server error and a conflict exits 3. */
export function worstExit(codes: Iterable<ExitCode>): ExitCode {
  let worst: ExitCode = EXIT.ok;
  for (const code of codes) if (code > worst) worst = code;
  return worst;
}
