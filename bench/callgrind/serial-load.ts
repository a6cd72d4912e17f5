import net from 'node:net';
import { HttpResponseSplitter } from '../loadgen/http-responses.js';

/** Where the server listens and its two routes (`{id}` where the id goes). */
export interface SerialLoadTarget {
  readonly port: number;
  readonly subscribePath: string;
  readonly publishPath: string;
}

/** What every published body starts with; subscribers count deliveries by it. */
const MARKER = 'callgrind-publish ';
const BODY_SIZE = 100;
/** How long a phase may take to be answered and delivered under valgrind before it fails. */
const PHASE_DEADLINE_MS = 600_000;

/**
 * The load of issue 15's non-pipelined step on raw sockets: one event stream per id, and
 * publishers on keep-alive connections with one request at a time each, 100-byte `text/plain`
 * bodies, ids round-robin. A phase ends when every publish was answered 2xx and every
 * subscriber received every message published to its id; anything else fails the run, so an
 * instruction count never stands for publishes that did not happen.
 */
export class SerialLoad {
  private readonly subscribers: net.Socket[] = [];
  private readonly publishers: net.Socket[] = [];
  private delivered = 0;
  private published = 0;

  private constructor(
    private readonly target: SerialLoadTarget,
    private readonly ids: readonly string[],
  ) {}

  /** Opens one subscriber per id (resolved once each has its response head) and the publishing connections. */
  static async open(target: SerialLoadTarget, idCount: number, connections: number): Promise<SerialLoad> {
    const ids = Array.from({ length: idCount }, (_, i) => `cg-${i}`);
    const load = new SerialLoad(target, ids);
    await Promise.all(ids.map((id) => load.subscribe(id)));
    for (let i = 0; i < connections; i++) load.publishers.push(await connect(target.port));
    return load;
  }

  /** Publishes `count` messages, then waits until every one was delivered. */
  async run(count: number): Promise<void> {
    const deliveredBefore = this.delivered;
    let next = 0;
    await withDeadline(
      Promise.all(
        this.publishers.map(async (socket) => {
          while (next < count) {
            const k = this.published + next++;
            await this.publishOne(socket, this.ids[k % this.ids.length]!, k);
          }
        }),
      ),
      'publishes answered',
    );
    this.published += count;
    await withDeadline(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (this.delivered - deliveredBefore >= count) resolve();
          else setTimeout(check, 20);
        };
        check();
      }),
      'deliveries received',
    );
    if (this.delivered - deliveredBefore !== count) throw new Error(`${this.delivered - deliveredBefore} deliveries for ${count} publishes`);
  }

  close(): void {
    for (const socket of [...this.subscribers, ...this.publishers]) socket.destroy();
  }

  private publishOne(socket: net.Socket, id: string, k: number): Promise<void> {
    const body = `${MARKER}${k} `.padEnd(BODY_SIZE, 'x');
    const path = this.target.publishPath.replace('{id}', id);
    return new Promise((resolve, reject) => {
      const splitter = new HttpResponseSplitter((status) => {
        socket.removeListener('data', onData);
        socket.removeListener('close', onClose);
        if (status >= 200 && status < 300) resolve();
        else reject(new Error(`publish answered ${status}`));
      });
      const onData = (chunk: Buffer): void => splitter.push(chunk);
      const onClose = (): void => reject(new Error('publishing connection closed'));
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${this.target.port}\r\nContent-Type: text/plain\r\nContent-Length: ${BODY_SIZE}\r\n\r\n${body}`);
    });
  }

  private async subscribe(id: string): Promise<void> {
    const socket = await connect(this.target.port);
    this.subscribers.push(socket);
    await new Promise<void>((resolve, reject) => {
      let head = true;
      let carry = '';
      socket.on('data', (chunk: Buffer) => {
        let text = carry + chunk.toString('latin1');
        if (head) {
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) {
            carry = text;
            return;
          }
          if (!/^HTTP\/1\.1 200 /.test(text)) return reject(new Error(`subscription answered ${text.slice(0, text.indexOf('\r\n'))}`));
          head = false;
          text = text.slice(end + 4);
          resolve();
        }
        for (let at = text.indexOf(MARKER); at >= 0; at = text.indexOf(MARKER, at + MARKER.length)) this.delivered++;
        // A marker split over two reads is counted once, in the next one.
        carry = text.slice(-(MARKER.length - 1));
      });
      socket.once('close', () => reject(new Error(`subscription to ${id} closed`)));
      socket.write(`GET ${this.target.subscribePath.replace('{id}', id)} HTTP/1.1\r\nHost: 127.0.0.1:${this.target.port}\r\nAccept: text/event-stream\r\n\r\n`);
    });
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${PHASE_DEADLINE_MS / 1000} s`)), PHASE_DEADLINE_MS);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
