/**
 * One HAProxy CLI command as a frozen value: built (and checked) by the `*-commands.ts` builders
 * beside this file, framed and sent by a client, its reply judged by `classifyReply`
 * (`../reply-verdict.ts`) according to its kind and parsed by `../../replies/`.
 */
export type CommandKind =
  | 'show-stat'
  | 'show-servers-state'
  | 'show-info'
  | 'get-weight'
  | 'set-server-weight'
  | 'set-server-addr'
  | 'set-server-state'
  | 'set-server-maxconn'
  | 'set-frontend-maxconn'
  | 'add-server'
  | 'enable-server'
  | 'disable-server'
  | 'enable-health'
  | 'disable-health'
  | 'del-server'
  | 'show-map'
  | 'get-map'
  | 'add-map'
  | 'set-map'
  | 'del-map'
  | 'clear-map'
  | 'prepare-map'
  | 'commit-map'
  | 'show-ssl-cert'
  | 'set-ssl-cert'
  | 'commit-ssl-cert'
  | 'abort-ssl-cert'
  | 'show-proc'
  | 'reload';

/** Which CLI understands the command: a worker's stats socket or the master socket (`-S`). */
export type CliTarget = 'worker' | 'master';

export interface RuntimeCommand {
  readonly kind: CommandKind;
  readonly target: CliTarget;
  /** The command line, without its newline. */
  readonly line: string;
  /** Lines sent after a `<<` command line, without the empty line that ends them; null for none. */
  readonly payload: string | null;
  /** For logs and errors: what the command does, in words. */
  readonly description: string;
}

/**
 * A command as the builders make it: frozen. Each builder (`*-commands.ts` beside this file) formats
 * exactly one HAProxy 2.6 CLI command and refuses, by throwing `UnsafeArgumentError`, any argument
 * that could end it or start another.
 */
export function runtimeCommand(
  kind: CommandKind,
  line: string,
  description: string,
  payload: string | null = null,
  target: CliTarget = 'worker',
): RuntimeCommand {
  return Object.freeze({ kind, target, line, payload, description });
}

/** Thrown by the builders, before anything is sent, for an argument that could break the command. */
export class UnsafeArgumentError extends Error {
  override readonly name = 'UnsafeArgumentError';
  constructor(
    readonly argument: string,
    readonly value: unknown,
    readonly rule: string,
  ) {
    super(`unsafe runtime API argument ${argument}: ${JSON.stringify(String(value).slice(0, 80))} is not ${rule}`);
  }
}

/**
 * HAProxy 2.6 buffers a whole `<<` payload in one CLI buffer (tune.bufsize, 16 KiB). Measured here:
 * 16,350 bytes of payload were answered, 16,360 were not, and the session then hung for good,
 * holding one of the socket's few CLI slots. Stay well below.
 */
export const MAX_PAYLOAD_BYTES = 15_000;

/**
 * The framing invariant every client relies on: a line is one line, a payload has no empty line
 * (that would end it early) and no CR or NUL. Builders guarantee it; clients check it again so a
 * hand-made command cannot desynchronise a pipelined connection.
 */
export function assertSendable(command: RuntimeCommand): void {
  if (/[\r\n\0]/.test(command.line) || command.line.trim() === '') {
    throw new UnsafeArgumentError('line', command.line, 'a single non-empty line');
  }
  if (command.payload === null) return;
  if (!command.line.endsWith(' <<')) throw new UnsafeArgumentError('line', command.line, 'a line ending in <<');
  if (/[\r\0]/.test(command.payload) || command.payload === '' || command.payload.split('\n').some((l) => l === '')) {
    throw new UnsafeArgumentError('payload', command.payload, 'non-empty lines without CR or NUL');
  }
  if (Buffer.byteLength(command.line) + Buffer.byteLength(command.payload) > MAX_PAYLOAD_BYTES) {
    throw new UnsafeArgumentError(
      'payload',
      `${Buffer.byteLength(command.payload)} bytes`,
      `at most ${MAX_PAYLOAD_BYTES} bytes`,
    );
  }
}

/** The bytes to write for a command: its line, then its payload and the empty line that ends it. */
export function encodeCommand(command: RuntimeCommand): string {
  return command.payload === null ? `${command.line}\n` : `${command.line}\n${command.payload}\n\n`;
}
