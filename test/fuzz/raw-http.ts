/**
 * A deliberately low-level HTTP/1.1 client on `node:net` for hostile-input tests: it sends
 * exactly the bytes it is given (paths with spaces, control characters or raw UTF-8, header
 * values no HTTP library would let through) and reads the answer byte for byte, chunked or
 * not. Event streams are decoded with a streaming UTF-8 decoder (a character split across two
 * TCP reads stays whole) and parsed by an independent SSE parser, eventsource-parser.
 */
import { connect, type Socket } from 'node:net';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** Header values may be bytes (sent as is) or text (sent as UTF-8, like browsers do). */
export type RawHeaders = Readonly<Record<string, string | Buffer>>;

/** A request to build: method and target are written verbatim into the request line. */
export interface RawRequestSpec {
  readonly method: string;
  /** The request target, as text (sent as UTF-8) or exact bytes. */
  readonly target: string | Buffer;
  readonly headers?: RawHeaders;
  readonly body?: string | Buffer;
  /** Adds `Content-Length` for the body unless the headers have one (default true). */
  readonly contentLength?: boolean;
}

/** Builds the exact bytes of a request (`Host` and `Connection: close` added when absent). */
export function requestBytes(spec: RawRequestSpec): Buffer {
  const body = spec.body === undefined ? undefined : typeof spec.body === 'string' ? Buffer.from(spec.body, 'utf8') : spec.body;
  const headers: [string, string | Buffer][] = Object.entries(spec.headers ?? {});
  const has = (name: string): boolean => headers.some(([n]) => n.toLowerCase() === name);
  if (!has('host')) headers.unshift(['Host', 'fuzz.test']);
  if (!has('connection')) headers.push(['Connection', 'close']);
  if (body !== undefined && spec.contentLength !== false && !has('content-length')) headers.push(['Content-Length', String(body.length)]);
  const parts: Buffer[] = [Buffer.from(`${spec.method} `, 'latin1'), typeof spec.target === 'string' ? Buffer.from(spec.target, 'utf8') : spec.target, Buffer.from(' HTTP/1.1\r\n', 'latin1')];
  for (const [name, value] of headers) {
    parts.push(Buffer.from(`${name}: `, 'latin1'), typeof value === 'string' ? Buffer.from(value, 'utf8') : value, Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('\r\n', 'latin1'));
  if (body !== undefined) parts.push(body);
  return Buffer.concat(parts);
}

/** A parsed response head. */
export interface ResponseHead {
  readonly status: number;
  /** Lower-case names; repeated headers joined with `, `. Values as latin1 text (one char per byte). */
  readonly headers: Readonly<Record<string, string>>;
  /** The head exactly as received, as latin1 text. */
  readonly raw: string;
}

/** A complete answer (or what arrived of an event stream before it was cut). */
export interface RawResponse extends ResponseHead {
  /** The body, de-chunked. For event streams: the first bytes only. */
  readonly body: Buffer;
  readonly eventStream: boolean;
  readonly elapsedMs: number;
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

function parseHead(raw: string): ResponseHead {
  const [statusLine = '', ...lines] = raw.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { status: match ? Number(match[1]) : 0, headers, raw };
}

/**
 * Incremental `Transfer-Encoding: chunked` decoder: feed it what the socket delivers, get the
 * payload bytes back; `done` once the last (zero-length) chunk was read.
 */
export class ChunkedDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  private remaining = -1;
  done = false;

  feed(data: Buffer): Buffer[] {
    this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.done) return out;
      if (this.remaining < 0) {
        const eol = this.buffer.indexOf('\r\n');
        if (eol < 0) return out;
        const size = Number.parseInt(this.buffer.subarray(0, eol).toString('latin1'), 16);
        if (!Number.isFinite(size) || size < 0) throw new Error(`bad chunk size line: ${JSON.stringify(this.buffer.subarray(0, eol).toString('latin1'))}`);
        this.buffer = this.buffer.subarray(eol + 2);
        if (size === 0) {
          this.done = true;
          return out;
        }
        this.remaining = size;
      }
      if (this.buffer.length < this.remaining + 2) return out;
      out.push(this.buffer.subarray(0, this.remaining));
      if (this.buffer[this.remaining] !== 0x0d || this.buffer[this.remaining + 1] !== 0x0a) throw new Error('chunk not followed by CRLF');
      this.buffer = this.buffer.subarray(this.remaining + 2);
      this.remaining = -1;
    }
  }
}

/** Options of {@link rawExchange}. */
export interface ExchangeOptions {
  /** Fails (rejects) when no complete answer came within this time (default 5 s). */
  readonly timeoutMs?: number;
  /** For an event stream: how long to collect bytes after the head before closing (default 50 ms). */
  readonly streamGraceMs?: number;
  /** Local address to connect from (e.g. 127.0.0.2). */
  readonly localAddress?: string;
}

/**
 * Sends one request on a new connection and reads the answer: to the end of the body, or for an
 * event stream until its first bytes arrived (then the connection is closed). Rejects when
 * the server answers nothing within the timeout or closes the connection without an answer.
 */
export function rawExchange(port: number, request: Buffer, options: ExchangeOptions = {}): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    let received: Buffer = Buffer.alloc(0);
    let head: ResponseHead | undefined;
    let bodyStart = 0;
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) return reject(error);
      if (!head) return reject(new Error(`connection closed without an answer; got ${JSON.stringify(received.toString('latin1').slice(0, 200))}`));
      const rest = received.subarray(bodyStart);
      const eventStream = /^text\/event-stream/i.test(head.headers['content-type'] ?? '');
      let body: Buffer;
      try {
        if (/chunked/i.test(head.headers['transfer-encoding'] ?? '')) body = Buffer.concat(new ChunkedDecoder().feed(rest));
        else if (head.headers['content-length'] !== undefined) body = rest.subarray(0, Number(head.headers['content-length']));
        else body = rest;
      } catch (decodeError) {
        return reject(decodeError as Error);
      }
      resolve({ ...head, body, eventStream, elapsedMs: performance.now() - started });
    };
    const timer = setTimeout(
      () => finish(new Error(`no complete answer within ${options.timeoutMs ?? 5000} ms; got ${JSON.stringify(received.toString('latin1').slice(0, 300))}`)),
      options.timeoutMs ?? 5000,
    );
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      if (head) return;
      const end = received.indexOf(HEAD_END);
      if (end < 0) return;
      head = parseHead(received.subarray(0, end).toString('latin1'));
      bodyStart = end + 4;
      if (/^text\/event-stream/i.test(head.headers['content-type'] ?? '')) setTimeout(() => finish(), options.streamGraceMs ?? 50);
    });
    // A server may answer and close before it has read the whole request: that is an answer.
    socket.on('error', (error) => (head ? finish() : finish(error)));
    socket.on('close', () => finish());
    // Not end(): Node aborts a request whose client half-closed before it was answered.
    socket.write(request);
  });
}

/** One event as eventsource-parser reports it. */
export interface ParsedEvent {
  readonly id: string | undefined;
  readonly event: string | undefined;
  readonly data: string;
}

/** An open event stream read with the raw client. */
export interface RawStream {
  readonly head: ResponseHead;
  readonly events: ParsedEvent[];
  readonly comments: string[];
  /** Resolves when the server ended the stream or the connection closed. */
  readonly ended: Promise<void>;
  waitFor(predicate: (events: readonly ParsedEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
}

/**
 * The events after `/messages/subscribe`'s greeting (`Subscribed to id …`, which carries the
 * stream's position as its id and always comes first). Mercure's opening position frame has no
 * data, so SSE parsers dispatch no event for it: nothing to drop there.
 */
export function afterOpening(events: readonly ParsedEvent[]): ParsedEvent[] {
  const first = events[0];
  const greeting = first !== undefined && first.event === undefined && first.data.startsWith('Subscribed to id ');
  return greeting ? events.slice(1) : [...events];
}

/**
 * Opens a subscription with exactly the given request bytes and resolves once the head
 * arrived (rejects on a non-200 answer, with its body in the message).
 */
export function openRawStream(port: number, request: Buffer, options: { timeoutMs?: number } = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let received: Buffer = Buffer.alloc(0);
    let head: ResponseHead | undefined;
    const events: ParsedEvent[] = [];
    const comments: string[] = [];
    const waiters = new Set<() => void>();
    const chunked = new ChunkedDecoder();
    const text = new TextDecoder('utf-8');
    let ended = false;
    const parser = createParser({
      onEvent: (e: EventSourceMessage) => {
        events.push({ id: e.id, event: e.event, data: e.data });
        for (const w of waiters) w();
      },
      onComment: (c) => comments.push(c),
    });
    let endResolve!: () => void;
    const endedPromise = new Promise<void>((r) => (endResolve = r));
    const end = (): void => {
      if (ended) return;
      ended = true;
      for (const w of waiters) w();
      endResolve();
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${options.timeoutMs ?? 5000} ms`));
    }, options.timeoutMs ?? 5000);
    const consume = (data: Buffer): void => {
      for (const payload of chunked.feed(data)) parser.feed(text.decode(payload, { stream: true }));
      if (chunked.done) socket.end();
    };
    socket.on('data', (data: Buffer) => {
      if (head) return consume(data);
      received = Buffer.concat([received, data]);
      const at = received.indexOf(HEAD_END);
      if (at < 0) return;
      clearTimeout(timer);
      head = parseHead(received.subarray(0, at).toString('latin1'));
      const rest = received.subarray(at + 4);
      if (head.status !== 200 || !/chunked/i.test(head.headers['transfer-encoding'] ?? '')) {
        socket.destroy();
        reject(new Error(`subscription answered ${head.status}: ${rest.toString('utf8').slice(0, 300)}`));
        return;
      }
      resolve({
        head,
        events,
        comments,
        ended: endedPromise,
        waitFor: (predicate, timeoutMs = 5000) =>
          new Promise<void>((ok, fail) => {
            if (predicate(events)) return ok();
            const check = (): void => {
              if (predicate(events)) {
                clearTimeout(deadline);
                waiters.delete(check);
                ok();
              } else if (ended) {
                clearTimeout(deadline);
                waiters.delete(check);
                fail(new Error(`stream ended with ${events.length} events: ${JSON.stringify(events.slice(-3))}`));
              }
            };
            const deadline = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`timed out after ${timeoutMs} ms with ${events.length} events: ${JSON.stringify(events.slice(-3))}`));
            }, timeoutMs);
            waiters.add(check);
          }),
        close: () => socket.destroy(),
      });
      consume(rest);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (!head) reject(error);
      end();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!head) reject(new Error('connection closed before the head'));
      end();
    });
    socket.write(request);
  });
}
