import { EventEmitter } from 'node:events';
import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { chunkOf } from '../sse/encode.js';
import type { EventStreamResponse } from '../sse/stream.js';
import { httpDate } from './http-date.js';

/** Where the shared socket listeners find their response. */
const RESPONSE = Symbol('sse-relay.raw-event-stream-response');
type RawStreamSocket = Socket & { [RESPONSE]?: RawEventStreamResponse };

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
/** Pipelined bytes kept while a stream is open; past this the connection is closed. */
export const MAX_PARKED_BYTES = 16 * 1024;

/**
 * An event stream's response written straight to the socket, for the raw subscribe path
 * (raw-subscribe.ts): the bytes node:http's `ServerResponse` writes for the same `writeHead`
 * and chunks (the status line, the given headers in their order, `Date`, then
 * `Transfer-Encoding: chunked`; every write a chunk; the end a last chunk), without node:http's
 * parser, IncomingMessage and ServerResponse for the life of the stream.
 *
 * Bytes the client sends while the stream is open (a pipelined request) are kept, up to
 * {@link MAX_PARKED_BYTES}, and once the last chunk is written the connection and those bytes go
 * to `whenWritten` (which hands them to node:http), so keep-alive works as after any answer.
 */
export class RawEventStreamResponse extends EventEmitter implements EventStreamResponse {
  readonly chunkedEncoding = true;
  private head: string | undefined;
  private ended = false;
  private written = false;
  /** What the client sent while the stream was open. */
  parked: Buffer | undefined;

  constructor(
    readonly socket: Socket,
    /** Told once the last chunk is written, with the connection (the response lets go of it). */
    private readonly whenWritten: (socket: Socket, parked: Buffer | undefined) => void,
  ) {
    super();
  }

  /**
   * Follows the socket from now on: its close and its errors are the response's, and what the
   * client sends is read (so its going away is seen) and parked.
   */
  attach(): void {
    const socket = this.socket as RawStreamSocket;
    socket[RESPONSE] = this;
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  private detach(): void {
    const socket = this.socket as RawStreamSocket;
    socket[RESPONSE] = undefined;
    socket.removeListener('data', onSocketData);
    socket.removeListener('end', onSocketEnd);
    socket.removeListener('error', onSocketError);
    socket.removeListener('close', onSocketClose);
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  get writableFinished(): boolean {
    return this.written;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  writeHead(status: number, headers: OutgoingHttpHeaders): this {
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n`;
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const one of value) head += `${name}: ${one}\r\n`;
      else head += `${name}: ${value}\r\n`;
    }
    this.head = `${head}Date: ${httpDate()}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    return this;
  }

  flushHeaders(): void {
    if (this.head === undefined) return;
    this.socket.write(this.head, 'latin1');
    this.head = undefined;
  }

  write(chunk: Buffer): boolean {
    this.flushHeaders();
    return this.socket.write(chunkOf(chunk));
  }

  end(text?: string): this {
    if (this.ended) return this;
    this.ended = true;
    this.flushHeaders();
    const last = text ? Buffer.concat([chunkOf(Buffer.from(text)), LAST_CHUNK]) : LAST_CHUNK;
    this.socket.write(last, (error) => {
      if (error || this.socket.destroyed) return;
      this.written = true;
      this.detach();
      this.emit('close');
      this.whenWritten(this.socket, this.parked);
    });
    return this;
  }
}

function onSocketData(this: RawStreamSocket, chunk: Buffer): void {
  const response = this[RESPONSE];
  if (!response) return;
  const parked = response.parked ? Buffer.concat([response.parked, chunk]) : chunk;
  if (parked.length > MAX_PARKED_BYTES) {
    this.destroy();
    return;
  }
  response.parked = parked;
}

/** The client half-closed: as node:http (without `allowHalfOpen`), the connection ends. */
function onSocketEnd(this: RawStreamSocket): void {
  this.destroy();
}

function onSocketError(this: RawStreamSocket): void {
  this[RESPONSE]?.emit('error');
  this.destroy();
}

function onSocketClose(this: RawStreamSocket): void {
  this[RESPONSE]?.emit('close');
}
