import net from 'node:net';

/** What the fake answers to one command: text (HAProxy's words), or a misbehaviour. */
export type FakeReply = string | { readonly delayMs: number; readonly reply: string } | 'drop' | 'hang';

export type FakeHandler = (line: string, payload: string[] | null) => FakeReply;

/**
 * A fake HAProxy worker CLI on 127.0.0.1 port 0 that behaves like 2.6 in prompt mode: `prompt`
 * switches it on, each reply is followed by "\n> ", a `<<` command reads payload lines up to an
 * empty line answering "+ " to each. It records every line it receives and every connection.
 */
export class FakeRuntimeServer {
  readonly received: string[] = [];
  connections = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(private handler: FakeHandler) {
    this.server = net.createServer((socket) => this.serve(socket));
  }

  static start(handler: FakeHandler): Promise<FakeRuntimeServer> {
    return FakeRuntimeServer.startOn(0, handler);
  }

  /** Listens on a given port: a node coming back where it was. */
  static async startOn(port: number, handler: FakeHandler): Promise<FakeRuntimeServer> {
    const fake = new FakeRuntimeServer(handler);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(port, '127.0.0.1', resolve);
    });
    return fake;
  }

  /** Sessions still open: one the client closed is gone from here once its FIN arrives. */
  get open(): number {
    return this.sockets.size;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  setHandler(handler: FakeHandler): void {
    this.handler = handler;
  }

  /** Closes every open session, as HAProxy does when `stats timeout` expires. */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    this.connections += 1;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let prompt = false;
    let buffered = '';
    let payload: { line: string; lines: string[] } | null = null;
    // Replies leave in order even when some are delayed, like HAProxy's one-at-a-time CLI.
    let chain = Promise.resolve();
    let stalled = false;
    const answer = (line: string, lines: string[] | null): void => {
      this.received.push(line);
      const reply = this.handler(line, lines);
      chain = chain.then(async () => {
        if (stalled || socket.destroyed) return;
        if (reply === 'drop') return void socket.destroy();
        if (reply === 'hang') return void (stalled = true);
        const text = typeof reply === 'string' ? reply : reply.reply;
        if (typeof reply !== 'string') await new Promise((r) => setTimeout(r, reply.delayMs));
        if (socket.destroyed) return;
        socket.write(`${text === '' ? '' : `${text}\n`}${prompt ? '\n> ' : '\n'}`);
        if (!prompt) socket.end(); // non-interactive: one command per connection
      });
    };
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (payload !== null) {
          if (line === '') {
            answer(payload.line, payload.lines);
            payload = null;
          } else {
            payload.lines.push(line);
            socket.write('+ ');
          }
        } else if (line === 'prompt') {
          prompt = !prompt;
          chain = chain.then(() => void socket.write(prompt ? '\n> ' : ''));
        } else if (line.endsWith(' <<')) {
          payload = { line, lines: [] };
          socket.write('+ ');
        } else {
          answer(line, null);
        }
      }
    });
  }
}
