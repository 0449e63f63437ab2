/**
 * What running a check or a command gives: its output, or the message that says why it failed
 * (`haproxy -c`, `keepalived -t`, a proxy validator, a Runtime API reply).
 */
export type Result = { readonly ok: true; readonly output: string } | { readonly ok: false; readonly message: string };
