/** A Runtime API reply that is not what the command prints: HAProxy changed, or the reply is an error message. */
export class RuntimeParseError extends Error {
  override readonly name = 'RuntimeParseError';
  constructor(
    readonly what: string,
    detail: string,
  ) {
    super(`cannot parse ${what}: ${detail}`);
  }
}
