import type { FastifyReply } from 'fastify';
import { ExpiryWatch } from '../auth/expiry.js';
import { SLOW_CONSUMER_POLICIES, type ServeOptions, type SlowConsumerPolicy } from '../config/options.js';
import { RelayError } from '../hub/errors.js';
import type { ConsumerSession } from '../hub/consumers.js';
import type { Hub } from '../hub/hub.js';
import type { SlowConsumerObserver } from '../sse/backlog-queue.js';
import { answerEventStreamHead, SseStream, type SseCloseListener } from '../sse/stream.js';
import { Ticker } from '../sse/ticker.js';
import type { Cursor } from '../store/store.js';
import type { EventStreamDescription, EventStreamRequest, EventStreamTransport } from './event-stream.js';
import { releaseFrameworkListeners } from './stream-response.js';

const HEARTBEAT = Buffer.from(':\n\n');
/**
 * The heartbeat timer ticks this many times per interval, and a stream gets a heartbeat once it
 * wrote nothing for that many ticks: an idle stream then hears one every interval (never less
 * often), and a stream that carries messages none. Writing a heartbeat to every stream at once
 * is a sweep as long as a message's fan-out (about 100 ms at 10,000 subscribers), and a publish
 * that arrives meanwhile waits behind it: that was the tail of `latency-10k-1hz`.
 */
const TICKS_PER_HEARTBEAT = 4;

/**
 * The one owner of every event stream's life, whatever the protocol: opening (register the
 * subscription, resolve the cursor, headers, preamble), replay and live (through the hub),
 * heartbeats and token expiry while open, and the end on every path (client gone, slow
 * consumer, store failure, expired token, shutdown), releasing what the stream held. Protocols
 * describe a stream ({@link EventStreamRequest}); they never manage one.
 */
export class EventStreams {
  /** One timer writing heartbeats to every open stream that has been quiet (see TICKS_PER_HEARTBEAT). */
  private readonly heartbeats: Ticker<SseStream>;
  /** Ends subscriptions when their access token expires (one timer for all). */
  private readonly tokenExpiry = new ExpiryWatch();
  /** Streams that are not hub subscriptions (the demo loop), ended on shutdown. */
  private readonly plain = new Set<SseStream>();

  constructor(
    private readonly hub: Hub,
    private readonly options: ServeOptions,
    /** Counts what the `skip` and `latest` policies drop (the metrics). */
    private readonly slowObserver?: SlowConsumerObserver,
  ) {
    this.heartbeats = new Ticker<SseStream>(options.heartbeatInterval / TICKS_PER_HEARTBEAT, (stream) => {
      if (stream.quietFor(TICKS_PER_HEARTBEAT)) stream.send(HEARTBEAT);
    });
  }

  /**
   * Opens a subscription as an event stream in the only order that is gap-free: register the
   * subscription (the hub holds live messages for it), resolve the cursor, send headers and
   * preamble, replay history, then go live. A failure before the stream opens unregisters the
   * subscription and rejects (Fastify answers it); once open, every end releases it.
   */
  async open(args: EventStreamRequest): Promise<void> {
    const { request, reply } = args;
    const { hub } = this;
    if (request.method === 'HEAD') {
      // The headers a GET would get (they may depend on the cursor), then the end: nothing is
      // registered, so nothing is held or left behind.
      const headers = args.headers(await hub.resolveCursor(args.lastEventId, args.cursorTopics));
      reply.hijack();
      answerEventStreamHead(reply.raw, { ...reply.getHeaders(), ...headers } as Record<string, string>);
      return;
    }
    await this.openOn(args, {
      response: reply.raw,
      presetHeaders: () => reply.getHeaders() as Record<string, string>,
      takeOver: () => {
        reply.hijack();
        releaseFrameworkListeners(reply.raw);
      },
      get gone() {
        return reply.raw.destroyed || request.raw.socket.destroyed;
      },
    });
  }

  /**
   * {@link open} on any transport (a GET). Rejects, with nothing registered and nothing
   * written, when the stream cannot open (the caller answers); resolves once the stream went
   * live, or ended.
   */
  async openOn(args: EventStreamDescription, transport: EventStreamTransport): Promise<void> {
    const { hub } = this;
    // The stream is the hub's sink. It exists before the response starts: the hub may dispatch
    // while the cursor resolves, and holds those messages because the subscription starts in
    // the replaying state. It writes nothing until it is opened.
    const stream = new SseStream(transport.response, {
      maxBacklogBytes: this.options.maxBacklog,
      slowPolicy: args.slowPolicy ?? this.options.slowConsumerPolicy,
      observer: this.slowObserver,
    });
    const subscription = hub.open(args.selector, stream);
    let cursor: Cursor | undefined;
    let headers: Record<string, string> | undefined;
    let consumer: ConsumerSession | undefined;
    let superseded = false;
    try {
      await hub.joined(subscription);
      if (args.consumer) {
        consumer = await args.consumer(subscription.registeredAfterSeq);
        consumer.onSuperseded(() => {
          superseded = true;
          stream.close('superseded');
        });
        cursor = consumer.cursor;
      } else {
        cursor = await hub.resolveCursor(args.lastEventId, args.cursorTopics);
      }
      headers = args.headers(cursor);
      // Ended while the cursor resolved: the hub shut down, or held more than it may for us.
      if (stream.closed && !transport.response.destroyed) throw closedWhileOpening(superseded, hub);
    } catch (error) {
      hub.unsubscribe(subscription);
      consumer?.end();
      throw error;
    }

    transport.takeOver();
    stream.subscription = subscription;
    const { lifecycle } = args;
    // A closure only for the streams that asked to be followed (one listener per stream).
    stream.onClose(
      lifecycle === undefined && consumer === undefined
        ? this.release
        : (ended, reason) => {
            this.release(ended, reason);
            consumer?.end();
            lifecycle?.ended();
          },
    );
    if (stream.closed || transport.gone) {
      hub.unsubscribe(subscription);
      consumer?.end();
      return;
    }
    // Headers that hooks set on the reply (CORS, discovery) go out with the stream's own, in one
    // writeHead (see SseStream.open).
    stream.open({ ...transport.presetHeaders(), ...headers });
    lifecycle?.opened();
    this.heartbeats.add(stream);
    this.tokenExpiry.add(stream, args.expiresAt);
    for (const frame of args.preamble(cursor, hub.startIdOf(subscription, cursor))) stream.send(frame);
    // Never rejects: a store failure during replay ends the stream with its reason.
    await hub.resume(subscription, cursor, consumer?.history);
  }

  /**
   * Opens a stream that is not a subscription (the demo loop): the caller writes to it, and
   * `onEnd` is told when it ended, for whatever reason. A HEAD request is answered here (the
   * headers, then the end): undefined, and the caller has nothing to write.
   */
  openPlain(reply: FastifyReply, onEnd: (stream: SseStream) => void, { askProxiesNotToBuffer = true }: { askProxiesNotToBuffer?: boolean } = {}): SseStream | undefined {
    reply.hijack();
    if (reply.request.method === 'HEAD') {
      answerEventStreamHead(reply.raw, reply.getHeaders() as Record<string, string>, { askProxiesNotToBuffer });
      return undefined;
    }
    releaseFrameworkListeners(reply.raw);
    const stream = new SseStream(reply.raw, { maxBacklogBytes: this.options.maxBacklog, askProxiesNotToBuffer });
    stream.onClose((ended, reason) => {
      this.release(ended, reason);
      onEnd(ended);
    });
    // With the headers hooks set (CORS, Vary), as a subscription's stream: a page on another
    // origin may read the probe (the SDK's diagnose()) or the demo.
    stream.open(reply.getHeaders() as Record<string, string>);
    this.plain.add(stream);
    return stream;
  }

  /** Ends every stream that is not a subscription (the hub ends those) and stops the timers. */
  shutdown(): void {
    for (const stream of [...this.plain]) stream.close('shutdown');
    this.heartbeats.stop();
    this.tokenExpiry.stop();
  }

  /** Releases what an ended stream held: one function for every stream (see SseCloseListener). */
  private readonly release: SseCloseListener = (stream) => {
    if (stream.subscription) this.hub.unsubscribe(stream.subscription);
    this.plain.delete(stream);
    this.heartbeats.delete(stream);
    this.tokenExpiry.delete(stream);
  };
}

/** Why a stream that ended before it opened is refused. */
function closedWhileOpening(superseded: boolean, hub: Hub): RelayError {
  if (superseded) return new RelayError('HUB_ERR_CONSUMER_BUSY', 'A newer stream of this consumer took over while this one was opening');
  return new RelayError(hub.isReady() ? 'HUB_ERR_SUBSCRIBER_BEHIND' : 'HUB_ERR_SHUTTING_DOWN');
}

/**
 * Reads a subscriber's `?slow=` choice: undefined when absent (the server's
 * `--slow-consumer-policy` applies). Throws HUB_ERR_SLOW_POLICY_INVALID (400) for anything else
 * than one of {@link SLOW_CONSUMER_POLICIES}, given once.
 */
export function readSlowPolicy(raw: string | readonly string[] | null | undefined): SlowConsumerPolicy | undefined {
  if (Array.isArray(raw) && raw.length <= 1) raw = raw[0] as string | undefined;
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' || !(SLOW_CONSUMER_POLICIES as readonly string[]).includes(raw)) {
    const shown = typeof raw === 'string' ? `"${raw.slice(0, 64)}"` : 'given several times';
    throw new RelayError('HUB_ERR_SLOW_POLICY_INVALID', `?slow= must be one of ${SLOW_CONSUMER_POLICIES.join(', ')} (${shown})`);
  }
  return raw as SlowConsumerPolicy;
}
