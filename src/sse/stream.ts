import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { SlowConsumerPolicy } from '../config/options.js';
import type { Message } from '../hub/message.js';
import type { Subscription } from '../hub/subscription.js';
import { BacklogQueue, type SlowConsumerObserver } from './backlog-queue.js';
import { chunkOf, chunkOfMessage, encodeComment } from './encode.js';

/** Options of one event stream. */
export interface SseStreamOptions {
  /**
   * Bytes the hub may hold for this subscriber (queued here plus buffered in the socket) before
   * it is disconnected as a slow consumer.
   */
  readonly maxBacklogBytes: number;
  /**
   * What happens past that limit (default `disconnect`): `disconnect` the subscriber; `skip`
   * the oldest queued messages and send a `gap` event before the next one; `latest`: replace a
   * queued message by a newer one with the same key, then skip (see backlog-queue.ts).
   */
  readonly slowPolicy?: SlowConsumerPolicy | undefined;
  /**
   * False only for the proxy probe asked to leave it out (`?honour-proxy=0`, see probe.ts):
   * every other stream sends `X-Accel-Buffering: no`.
   */
  readonly askProxiesNotToBuffer?: boolean | undefined;
  /** Told what `skip` and `latest` dropped (metrics); shared by every stream. */
  readonly observer?: SlowConsumerObserver | undefined;
}

/** Why a stream ended. */
export type SseCloseReason = 'client' | 'slow-consumer' | 'shutdown' | 'store-failed' | 'store-lost' | 'superseded' | 'error';

/**
 * The last comment of a consumer's stream that a newer stream of the same consumer replaced
 * (`?takeover=1`); the SDK stops on it instead of taking the consumer back.
 */
export const SUPERSEDED_COMMENT = 'closed: a newer stream of this consumer took over';

/** The comment a stream ends with, for the reasons a client should hear (it then reconnects). */
const FINAL_COMMENT: Partial<Record<SseCloseReason, string>> = {
  shutdown: 'closed: hub shutting down',
  'store-failed': 'closed: the store failed to read history; reconnect to resume',
  'store-lost': 'closed: the store lost its data; reconnect (earlier history is gone)',
  superseded: SUPERSEDED_COMMENT,
};

/**
 * Called once when a stream ends. One function shared by every stream of a server, which finds
 * what to release from the stream itself (`subscription`), rather than a closure per stream.
 */
export type SseCloseListener = (stream: SseStream, reason: SseCloseReason) => void;

const BASE_HEADERS = {
  'Content-Type': 'text/event-stream',
  // no-transform: proxies and CDNs must not compress or re-chunk the stream (they would buffer it).
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  // Proxies (nginx) buffer streamed responses unless told not to.
  'X-Accel-Buffering': 'no',
};

const { 'X-Accel-Buffering': _hint, ...HEADERS_WITHOUT_PROXY_HINT } = BASE_HEADERS;

/**
 * Answers a HEAD request for an event stream: the status and headers a GET gets (`headers`
 * added to the event-stream ones), then the end, with no body and nothing left open.
 */
export function answerEventStreamHead(res: ServerResponse, headers?: Readonly<Record<string, string | number | readonly string[]>>, { askProxiesNotToBuffer = true } = {}): void {
  const base = askProxiesNotToBuffer ? BASE_HEADERS : HEADERS_WITHOUT_PROXY_HINT;
  res.writeHead(200, (headers ? { ...base, ...headers } : base) as OutgoingHttpHeaders);
  res.end();
}

/**
 * What a stream writes to: node:http's `ServerResponse`, or the raw subscribe path's response
 * on a bare socket (`src/http/raw-event-stream-response.ts`), which never has node:http's
 * request and response objects. `chunkedEncoding` is `ServerResponse`'s field (not in its
 * typings), true when the body goes out in HTTP/1.1 chunks.
 */
export interface EventStreamResponse {
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  flushHeaders(): void;
  readonly socket: Socket | null;
  readonly chunkedEncoding?: boolean;
  write(chunk: Buffer): unknown;
  end(chunk?: string): unknown;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  on(event: 'close' | 'error', listener: () => void): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
  off(event: 'close' | 'drain', listener: () => void): unknown;
}

/** Where a response's listeners find their stream (see the constructor). */
const STREAM = Symbol('sse-relay.stream');
type StreamResponse = EventStreamResponse & { [STREAM]?: SseStream };

/**
 * One `text/event-stream` response, and the hub's sink for one subscription.
 *
 * It exists before the response starts (the hub registers the subscription first, while the
 * cursor resolves, and holds live messages meanwhile): nothing is written until {@link open}.
 *
 * Writes are coalesced: everything queued during one event-loop turn goes out in one
 * `write()` at the end of the turn (one shared `setImmediate` for all streams, not one per
 * stream). Under load this turns many small syscalls into one; an idle hub still sends at once.
 *
 * The backlog (queued bytes plus what the socket has not yet handed to the kernel) is bounded
 * by `maxBacklogBytes`: past it the subscriber is cut off with a final comment and its memory
 * released, so one stalled client cannot grow the hub or delay the others.
 *
 * Per-connection memory is what limits how many idle subscribers one process holds, so the
 * state here is a handful of fields: one queued buffer in a field (an array only when several
 * are due in one turn), no closure per stream (shared listeners find the stream through a
 * symbol on the response; the close listener is shared and gets the stream), and headers
 * handed to `writeHead` in one object, which keeps Node from storing them per response.
 * Measured with heap snapshots at 5,000 open streams: the former wrapper object, its closures
 * and the per-response header store cost about 2 KiB per connection.
 */
export class SseStream {
  /** The hub subscription this stream is the sink of, for the close listener to release. */
  subscription: Subscription | undefined;
  /** The one buffer queued this turn; `several` holds them all once there is more than one. */
  private pendingFirst: Buffer | undefined;
  private several: Buffer[] | undefined;
  private pendingBytes = 0;
  /**
   * Set when the response is chunked (HTTP/1.1): frames are then written, already framed as
   * chunks (encoded once per message, see `encodeMessage`), straight to the socket. This skips
   * `ServerResponse.write`, which re-frames every write and corks/uncorks the socket.
   * `res.end()` still writes the final zero-length chunk, so the response ends cleanly.
   */
  private socket: Socket | undefined;
  private opened = false;
  private scheduled = false;
  private ended = false;
  private closeListener: SseCloseListener | undefined;
  private readonly maxBacklogBytes: number;
  /**
   * With the `skip` and `latest` policies: frames not yet handed to the socket, which is given
   * more only once it drained (so what waits can still be dropped). Undefined with `disconnect`,
   * whose path is the one above, unchanged.
   */
  private readonly held: BacklogQueue | undefined;
  private awaitingDrain = false;
  /** Heartbeat ticks since bytes were last handed to the connection (see {@link quietFor}). */
  private quietTicks = 0;
  private readonly baseHeaders: Record<string, string>;

  constructor(
    private readonly res: EventStreamResponse,
    options: SseStreamOptions,
  ) {
    this.maxBacklogBytes = options.maxBacklogBytes;
    this.baseHeaders = options.askProxiesNotToBuffer === false ? HEADERS_WITHOUT_PROXY_HINT : BASE_HEADERS;
    const policy = options.slowPolicy ?? 'disconnect';
    if (policy !== 'disconnect') this.held = new BacklogQueue(this.maxBacklogBytes, policy === 'latest', () => this.socket !== undefined, options.observer);
    (res as StreamResponse)[STREAM] = this;
    res.on('close', onResponseClose);
    res.on('error', onResponseError);
  }

  /**
   * Sends the status line and headers now, so the client's `open` fires at once. `headers` are
   * added to the event-stream ones (CORS, discovery, the replay-gap signal).
   */
  open(headers?: Readonly<Record<string, string | number | readonly string[]>>): void {
    if (this.ended || this.opened) return;
    this.opened = true;
    this.res.writeHead(200, (headers ? { ...this.baseHeaders, ...headers } : this.baseHeaders) as OutgoingHttpHeaders);
    this.res.flushHeaders();
    const socket = this.res.socket;
    // Events are small and latency matters more than packet count.
    socket?.setNoDelay(true);
    if (socket && this.res.chunkedEncoding === true) this.socket = socket;
    if (this.pendingBytes > 0) this.schedule();
  }

  /** True once the stream ended (client gone, evicted, shut down), even before it opened. */
  get closed(): boolean {
    return this.ended;
  }

  /** Called once when the stream ends, for whatever reason. */
  onClose(listener: SseCloseListener): void {
    this.closeListener = listener;
  }

  /** Queues framed bytes (from `encode.ts`) for the end of this event-loop turn. */
  send(frame: Buffer): void {
    this.queue(frame, undefined);
  }

  private queue(frame: Buffer, message: Message | undefined): void {
    if (this.ended) return;
    if (this.socket) frame = message === undefined ? chunkOf(frame) : chunkOfMessage(message, frame);
    if (this.held) {
      this.held.admit(frame, message?.id, message?.key, this.socketBytes());
      if (this.opened) this.schedule();
      return;
    }
    if (this.wouldOverflow(frame.length)) {
      this.close('slow-consumer');
      return;
    }
    if (this.pendingFirst === undefined) this.pendingFirst = frame;
    else if (this.several === undefined) this.several = [this.pendingFirst, frame];
    else this.several.push(frame);
    this.pendingBytes += frame.length;
    if (this.opened) this.schedule();
  }

  /**
   * True when queuing `bytes` more now would disconnect this subscriber as a slow consumer.
   * One frame always fits when nothing is waiting, so a message larger than the backlog limit
   * (up to the body limit) is still delivered to a subscriber that keeps up.
   */
  wouldOverflow(bytes: number): boolean {
    const waiting = this.backlogBytes;
    return waiting > 0 && waiting + bytes > this.maxBacklogBytes;
  }

  /** Bytes held for this subscriber: queued here plus not yet handed to the kernel. */
  get backlogBytes(): number {
    const queued = this.held ? this.held.bytes + this.held.gapBytes : this.pendingBytes;
    return queued + this.socketBytes();
  }

  private socketBytes(): number {
    return this.socket ? this.socket.writableLength : this.res.writableLength;
  }

  /**
   * Writes what is queued now (instead of at the end of the turn) and resolves once the socket
   * can take more: at once when it accepted the bytes, after its `drain` when it asked for
   * one, or when the stream ends. Used to pace a replay; one listener per paused replay.
   */
  writable(): Promise<void> {
    this.flush();
    const target = this.socket ?? this.res;
    if (this.ended || !target.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        target.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      target.once('drain', done);
      this.res.once('close', done);
    });
  }

  /** The hub's sink interface: the frame is already encoded, once for all subscribers. */
  deliver(message: Message, frame: Buffer): void {
    this.queue(frame, message);
  }

  /**
   * Counts one heartbeat tick and tells whether nothing was written for `ticks` of them: only
   * such a stream needs a heartbeat. Any write restarts the count, and so does a heartbeat
   * asked for: a stream waiting for drain writes nothing, and must not queue one every tick.
   */
  quietFor(ticks: number): boolean {
    if (++this.quietTicks < ticks) return false;
    this.quietTicks = 0;
    return true;
  }

  /** Sends a comment (heartbeat, notice). */
  comment(text: string): void {
    this.send(Buffer.from(encodeComment(text)));
  }

  /**
   * Ends the stream: flushes what is queued (unless evicted), adds a final comment, closes.
   * Before {@link open} nothing is written: the route answers instead (see event-stream.ts).
   */
  close(reason: SseCloseReason): void {
    if (this.ended) return;
    if (!this.opened) {
      this.finish(reason);
      return;
    }
    if (reason === 'slow-consumer') {
      // Drop what the client could not take; tell it why, then let go of the socket.
      this.dropPending();
      this.res.end(encodeComment('closed: slow consumer'));
      // The client is not reading, so the final comment may never drain: release the socket
      // soon regardless (one timer per eviction, never per message).
      if (this.res.socket) setTimeout(releaseUnfinished, EVICTED_DRAIN_MS, this.res).unref();
    } else {
      this.flush(true);
      const comment = FINAL_COMMENT[reason];
      if (comment === undefined) this.res.end();
      else this.res.end(encodeComment(comment));
    }
    this.finish(reason);
  }

  /**
   * Writes the queued bytes in one call. With `skip` and `latest`, only once the socket has
   * drained (unless `force`, when the stream ends): what waits here can still be dropped.
   */
  flush(force = false): void {
    this.scheduled = false;
    if (this.held) {
      this.flushHeld(force);
      return;
    }
    if (this.pendingBytes === 0 || this.ended || !this.opened) return;
    const several = this.several;
    const chunk = several === undefined ? this.pendingFirst! : Buffer.concat(several, this.pendingBytes);
    this.dropPending();
    this.write(chunk);
  }

  private flushHeld(force: boolean): void {
    const held = this.held!;
    if (held.empty || this.ended || !this.opened) return;
    const target = this.socket ?? this.res;
    if (target.writableNeedDrain && !force) {
      if (!this.awaitingDrain) {
        // One listener per stalled stream (not per message), gone once it drained.
        this.awaitingDrain = true;
        target.once('drain', () => {
          this.awaitingDrain = false;
          this.flush();
        });
      }
      return;
    }
    const chunk = held.take();
    if (chunk === undefined) return;
    this.write(chunk);
  }

  private write(chunk: Buffer): void {
    this.quietTicks = 0;
    if (this.socket) this.socket.write(chunk);
    else this.res.write(chunk);
  }

  /**
   * Ends without writing (the response closed or failed). Public for the shared response
   * listeners below; the hub ends a stream with {@link close}.
   */
  finish(reason: SseCloseReason): void {
    if (this.ended) return;
    this.ended = true;
    this.dropPending();
    const listener = this.closeListener;
    this.closeListener = undefined;
    listener?.(this, reason);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    flushQueue.push(this);
    if (flushQueue.length === 1) setImmediate(flushAll);
  }

  private dropPending(): void {
    this.held?.clear();
    this.pendingFirst = undefined;
    this.several = undefined;
    this.pendingBytes = 0;
  }
}

/** How long an evicted stream has to deliver its last bytes before its socket is destroyed. */
const EVICTED_DRAIN_MS = 1000;

/**
 * Destroys the socket of an evicted response that has still not been delivered. A response
 * that finished has let go of its socket: the client read the end of the stream, and the
 * connection went back to keep-alive, maybe already carrying the client's next request, which
 * destroying it would reset. An unfinished response still owns its socket (HTTP/1.1 answers
 * in order), so nothing else is on it that could be served anyway.
 */
function releaseUnfinished(res: EventStreamResponse): void {
  if (res.writableFinished) return;
  res.socket?.destroy();
}

function onResponseClose(this: StreamResponse): void {
  this[STREAM]?.finish('client');
}

function onResponseError(this: StreamResponse): void {
  this[STREAM]?.finish('error');
}

let flushQueue: SseStream[] = [];

function flushAll(): void {
  const queue = flushQueue;
  flushQueue = [];
  for (const stream of queue) stream.flush();
}
