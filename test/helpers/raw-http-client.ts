import { connect, type Socket } from 'node:net';

/** One HTTP answer as it came on the wire. */
export interface RawAnswer {
  readonly head: string;
  readonly status: number;
  readonly body: string;
}

/** A raw HTTP/1.1 client connection (no client-side rewriting of anything): writes bytes as given, splits what comes back into answers. */
export class RawClient {
  readonly socket: Socket;
  private received = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.waiting?.();
    });
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.waiting?.();
        resolve();
      }),
    );
    socket.on('error', () => {});
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** The next whole answer (Content-Length or chunked), or undefined when the connection closes first. */
  async next(): Promise<RawAnswer | undefined> {
    for (;;) {
      const answer = this.take();
      if (answer) return answer;
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }

  private take(): RawAnswer | undefined {
    const text = this.received.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end === -1) return undefined;
    const head = text.slice(0, end);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    let bodyEnd: number;
    if (length) bodyEnd = end + 4 + Number(length[1]);
    else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      const last = text.indexOf('0\r\n\r\n', end + 4);
      if (last === -1) return undefined;
      bodyEnd = last + 5;
    } else bodyEnd = end + 4;
    if (this.received.length < bodyEnd) return undefined;
    const body = this.received.subarray(end + 4, bodyEnd).toString('utf8');
    this.received = this.received.subarray(bodyEnd);
    return { head, status: Number(head.slice(9, 12)), body };
  }

  close(): void {
    this.socket.destroy();
  }
}

