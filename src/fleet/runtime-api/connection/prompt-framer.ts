/**
 * Splits the byte stream of an interactive (`prompt`) HAProxy CLI session into replies.
 *
 * In prompt mode every command's output, even an empty one, is followed by the prompt "\n> ".
 * A reply can contain ">" but never a line that starts with "> " (HAProxy prints no such line
 * for any command we build), so the first "\n> " after a reply's start ends it. The stream is
 * scanned once, including a prompt split across two chunks, so a 12 MB `show stat` stays linear.
 */
export class PromptFramer {
  private parts: string[] = [];
  /** Up to two characters held back in case they begin a prompt completed by the next chunk. */
  private carry = '';

  /** Feeds decoded text; returns the replies it completed, in order. */
  push(chunk: string): string[] {
    const data = this.carry + chunk;
    const replies: string[] = [];
    let start = 0;
    for (let at = data.indexOf(PROMPT); at >= 0; at = data.indexOf(PROMPT, start)) {
      // Most replies (10,000 `set weight` in a row) begin and end within one chunk: no joining.
      if (this.parts.length === 0) replies.push(data.slice(start, at));
      else {
        this.parts.push(data.slice(start, at));
        replies.push(this.parts.join(''));
        this.parts = [];
      }
      start = at + PROMPT.length;
    }
    const keep = Math.min(PROMPT.length - 1, data.length - start);
    if (data.length - keep > start) this.parts.push(data.slice(start, data.length - keep));
    this.carry = data.slice(data.length - keep);
    return replies;
  }

  /** True when nothing of an unfinished reply is buffered. */
  get idle(): boolean {
    return this.parts.length === 0 && this.carry === '';
  }
}

export const PROMPT = '\n> ';

/**
 * While a `<<` payload is read, HAProxy answers each line (the command line included) with "+ "
 * before the real reply: strip exactly those.
 */
export function stripPayloadPrompts(reply: string, payloadLines: number): string {
  const prefix = '+ '.repeat(payloadLines + 1);
  return reply.startsWith(prefix) ? reply.slice(prefix.length) : reply.replace(/^(?:\+ )+/, '');
}
