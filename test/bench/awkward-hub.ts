/**
 * A fake hub on the bench's two routes that frames everything as awkwardly as the protocol
 * allows, for the load generator's tests: events are queued per subscriber and written in random
 * pieces (1–40 bytes, or all at once), one piece per event-loop turn, so reads split and merge at
 * arbitrary places; events mix LF, CR and CRLF line ends, comments and unknown fields; publishes
 * are answered with Content-Length and chunked bodies, each cut in two writes. It can drop or
 * repeat one message for one subscriber, and several fakes can share their subscribers (a fake
 * cluster) so that a publish on any of them reaches the subscribers of all.
 */
import net from 'node:net';

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LINE_ENDS = ['\n', '\r\n', '\r'] as const;

/** One event with awkward but legal extras around the data line. */
export function frame(rand: () => number, id: number, data: string): string {
  const le = LINE_ENDS[Math.floor(rand() * 3)]!;
  let out = '';
  if (rand() < 0.3) out += `: comment ${id}${le}`;
  if (rand() < 0.7) out += `id: ${id}${le}`;
  if (rand() < 0.3) out += `event: message${le}`;
  if (rand() < 0.2) out += `retry: 1000${le}`;
  if (rand() < 0.2) out += `unknownfield${le}`;
  out += rand() < 0.5 ? `data: ${data}${le}` : `data:${data}${le}`;
  if (rand() < 0.2) out += `data: second line${le}`;
  return `${out}${le}`;
}

/** Wraps bytes in chunked transfer encoding, in chunks of random sizes, some with extensions. */
export function chunk(rand: () => number, body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < body.length) {
    const n = Math.min(body.length - i, 1 + Math.floor(rand() * 40));
    const ext = rand() < 0.1 ? ';x=1' : '';
    const size = rand() < 0.5 ? n.toString(16) : n.toString(16).toUpperCase();
    parts.push(Buffer.from(`${size}${ext}\r\n`), body.subarray(i, i + n), Buffer.from('\r\n'));
    i += n;
  }
  return Buffer.concat(parts);
}

/** Cuts bytes into pieces of 1 to `max` bytes. */
export function pieces(rand: () => number, bytes: Buffer, max: number): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < bytes.length) {
    const n = 1 + Math.floor(rand() * max);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Message `seq` 3 of publishing lane `lane`, for the subscriber opened `subscriber`-th (0-based, across a cluster). */
export interface MessageSelector {
  readonly subscriber: number;
  readonly lane: number;
}

/** What several fakes share to act as one hub: subscribers by topic and the id sequence. */
export interface FakeCluster {
  readonly topics: Map<string, AwkwardSubscriber[]>;
  subscriberCount: number;
  nextId: number;
}

export function fakeCluster(): FakeCluster {
  return { topics: new Map(), subscriberCount: 0, nextId: 1 };
}

export interface AwkwardHubOptions {
  readonly chunked: boolean;
  /** Never delivers this message to this subscriber. */
  readonly drop?: MessageSelector;
  /** Delivers this message to this subscriber twice. */
  readonly duplicate?: MessageSelector;
  /** Shared with other fakes; default: its own. */
  readonly cluster?: FakeCluster;
  /** Hands each publish to the subscribers this long after it arrived (timers keep its order). */
  readonly fanOutDelayMs?: number;
  readonly seed?: number;
}

export interface AwkwardHub {
  readonly port: number;
  /** Subscriptions opened on this fake, and publishes it answered. */
  readonly subscribers: number;
  readonly publishes: number;
  close(): Promise<void>;
}

export class AwkwardSubscriber {
  private queue: Buffer[] = [];
  private writing = false;
  constructor(
    readonly socket: net.Socket,
    readonly index: number,
    private readonly rand: () => number,
    private readonly chunked: boolean,
  ) {}

  send(text: string): void {
    const rand = this.rand;
    const body = Buffer.from(text);
    this.queue.push(...pieces(rand, this.chunked ? chunk(rand, body) : body, rand() < 0.3 ? 4096 : 40));
    if (!this.writing) {
      this.writing = true;
      setImmediate(() => this.pump());
    }
  }

  private pump(): void {
    // Sometimes one piece per turn (split reads), sometimes many at once (merged reads).
    const n = this.rand() < 0.5 ? 1 : this.queue.length;
    for (const piece of this.queue.splice(0, n)) if (!this.socket.destroyed) this.socket.write(piece);
    if (this.queue.length > 0) setImmediate(() => this.pump());
    else this.writing = false;
  }
}

export async function startAwkwardHub(options: AwkwardHubOptions): Promise<AwkwardHub> {
  const rand = random(options.seed ?? (options.chunked ? 1 : 2));
  const cluster = options.cluster ?? fakeCluster();
  const sockets = new Set<net.Socket>();
  let subscribers = 0;
  let publishes = 0;
  const matches = (selector: MessageSelector | undefined, subscriber: AwkwardSubscriber, lane: number, seq: number): boolean =>
    selector !== undefined && seq === 3 && lane === selector.lane && subscriber.index === selector.subscriber;

  const fanOut = (id: string, body: string): void => {
    const [, lane, seq] = body.split(',').map(Number) as [number, number, number];
    for (const subscriber of cluster.topics.get(id) ?? []) {
      if (matches(options.drop, subscriber, lane, seq)) continue;
      const event = frame(rand, cluster.nextId, body);
      subscriber.send(matches(options.duplicate, subscriber, lane, seq) ? event + event : event);
    }
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const body = buffer.subarray(end + 4, end + 4 + length).toString();
        buffer = buffer.subarray(end + 4 + length);
        const [method, path] = head.split(' ');
        const sub = /^\/messages\/subscribe\/(.+)$/.exec(path ?? '');
        if (method === 'GET' && sub) {
          subscribers++;
          const subscriber = new AwkwardSubscriber(socket, cluster.subscriberCount++, rand, options.chunked);
          const list = cluster.topics.get(sub[1]!) ?? [];
          list.push(subscriber);
          cluster.topics.set(sub[1]!, list);
          socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n${options.chunked ? 'Transfer-Encoding: chunked\r\n' : ''}\r\n`);
          subscriber.send(': hi\n\ndata: Subscribed\n\n');
          continue;
        }
        const id = /^\/messages\/(.+)$/.exec(path ?? '')?.[1] ?? '';
        publishes++;
        if (options.fanOutDelayMs) setTimeout(() => fanOut(id, body), options.fanOutDelayMs);
        else fanOut(id, body);
        const answer = `{"id":"${cluster.nextId++}"}`;
        // Answers alternate framings and are cut in two writes.
        const text =
          cluster.nextId % 2 === 0
            ? `HTTP/1.1 200 OK\r\nContent-Length: ${answer.length}\r\n\r\n${answer}`
            : `HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n${answer.length.toString(16)}\r\n${answer}\r\n0\r\n\r\n`;
        const cut = 1 + Math.floor(rand() * (text.length - 1));
        socket.write(text.slice(0, cut));
        socket.write(text.slice(cut));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get subscribers() {
      return subscribers;
    },
    get publishes() {
      return publishes;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
