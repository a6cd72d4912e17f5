import { createParser, type EventSourceMessage, type ParseError } from 'eventsource-parser';
import { ConsumerAcks } from './consumer-acks.js';
import { messagesUrl, resolveHeaders, type HeadersOption } from './endpoints.js';
import { errorFromResponse, RelayClientError, unreachableError } from './errors.js';
import { EventQueue } from './event-queue.js';
import { DEFAULT_IDLE_TIMEOUT_MS, IdleWatchdog } from './idle-watchdog.js';
import { LeadingFrame } from './leading-frame.js';
import { SharedSubscription, tabSharingAvailable, type ConnectionHooks } from './shared-subscription.js';
import { endWaiters, subscriptionIterator, type Waiter } from './waiters.js';
import {
  DEFAULT_INITIAL_DELAY_MS,
  DEFAULT_MAX_DELAY_MS,
  reconnectDelay,
  retryAfterMs,
  wait,
  type ReconnectOptions,
} from './reconnect.js';

/** One event of a subscription. */
export interface RelayEvent {
  /** The event id (`id:` field); absent on the hub's notices, such as `gap`. */
  id?: string;
  /** The event type: `message` unless the publisher gave one; `gap` when a resume was not exact. */
  event: string;
  /** The data; a multi-line message arrives with its lines joined by LF. */
  data: string;
  /**
   * When the hub accepted the message (from the `: published <ISO 8601>` comment that starts
   * each message frame of an sse-relay hub); absent on notices and from hubs that do not send
   * it. Replayed history carries its original time, so it tells old messages from live ones.
   */
  publishedAt?: Date;
}

/** Passed to `onOpen` each time the stream opens. */
export interface OpenInfo {
  /** False for the first connection, true for every reconnection. */
  reconnect: boolean;
  /** The `Last-Event-ID` this connection resumed from, if any. */
  lastEventId: string | undefined;
}

/** Passed to `onRetry` before each wait for a reconnection. */
export interface RetryInfo {
  /** Why the previous attempt failed or the stream ended. */
  error: RelayClientError;
  /** How long the subscription waits before the next attempt. */
  delayMs: number;
  /** Failed attempts since the stream was last open (0 for the first retry after a drop). */
  attempt: number;
  /** Whether the stream has been open at least once. */
  everOpened: boolean;
}

/** Options of {@link subscribe}. */
export interface SubscribeOptions {
  /** Base URL of the hub, e.g. `http://127.0.0.1:3000` (a path prefix is kept). */
  url: string;
  /** The id (topic) to subscribe to; percent-encoded into the URL. Required unless `streamUrl`. */
  id?: string;
  /**
   * An event-stream URL to read instead of `/messages/subscribe/:id`, resolved against `url`:
   * for instance the hub's Mercure endpoint, `/.well-known/mercure?topic=...`.
   */
  streamUrl?: string;
  /** Resume after this event id (sent as `Last-Event-ID`); `earliest` replays all retained. */
  lastEventId?: string;
  /**
   * Subscribe as this acknowledged consumer of `id` (README "Acknowledged consumers"): every
   * connection replays what it has not acknowledged, so events may come twice. Acknowledge with
   * `subscription.ack(id)`, or `autoAck`. `lastEventId` then only places a new consumer's start.
   * A 409 (the consumer's stream is open elsewhere, or its last one not yet seen closing) is
   * retried with the reconnection backoff, reported by `onRetry`. Once its stream has opened,
   * every reconnection takes the consumer over (`takeover=1`: a stream of it the hub still
   * holds, dead without a FIN, is ended); a subscription whose stream was taken over that way
   * stops with CLIENT_ERR_CONSUMER_SUPERSEDED.
   */
  consumer?: string;
  /**
   * With `consumer`: acknowledge each event once your code took it, batched (one request for
   * all the events of `delayMs`, default 200). With an iterator, an event counts as taken when
   * the next one is asked for (so the one a `break` leaves is not acknowledged); with
   * `onMessage` only, when the callback returned. Default false.
   */
  autoAck?: boolean | { delayMs?: number };
  /** Called when an automatic acknowledgement failed (the next one covers the same events). */
  onAckError?: (error: RelayClientError) => void;
  /** Extra request headers, or a function called before every connection (fresh tokens). */
  headers?: HeadersOption;
  /** Aborting it closes the subscription, like `close()`. */
  signal?: AbortSignal;
  /**
   * Reconnection after a drop, a network error, a 5xx or a 429, resuming with `Last-Event-ID`.
   * The hub's `retry:` hint replaces `initialDelayMs` once received. `false`: the first such
   * failure ends the subscription with an error. Default `{}` (500 ms doubling up to 30 s).
   */
  reconnect?: ReconnectOptions | false;
  /** The `fetch` to use. Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
  /**
   * Events the async iterator may hold before the subscription stops reading the socket (so
   * nothing is lost; a hub that then drops the slow consumer is resumed from the last event).
   * Default 1000.
   */
  maxBufferedEvents?: number;
  /** Largest event accepted, in characters; a larger one ends the subscription. Default 16 Mi. */
  maxEventSize?: number;
  /**
   * Milliseconds without a byte from the hub (heartbeat comments count) after which the
   * connection is taken for dead, aborted and reopened with `Last-Event-ID` (error
   * `CLIENT_ERR_STREAM_IDLE` in `onRetry`). This is what notices a hub or a network path that
   * vanished without closing the connection. Keep it above the hub's heartbeat interval (15 s by
   * default; Mercure hubs often use 40 s). Also bounds the wait for the response headers.
   * Default 45000; 0 disables it.
   */
  idleTimeoutMs?: number;
  /** Called each time the stream opens (the hub has registered the subscription by then). */
  onOpen?: (info: OpenInfo) => void;
  /**
   * Called for each event. When given, events are not buffered for the async iterator unless
   * one has been created.
   */
  onMessage?: (event: RelayEvent) => void;
  /** Called before each reconnection wait. */
  onRetry?: (info: RetryInfo) => void;
  /**
   * Called once when the subscription ends on an error it does not retry: a 4xx answer other
   * than 429 (with the hub's code, e.g. `HUB_ERR_TOPIC_INVALID`), a response that is not an
   * event stream, an oversized event, or any failure when `reconnect` is `false`.
   */
  onError?: (error: RelayClientError) => void;
  /**
   * One connection for every tab of this origin that subscribes to the same stream (same hub URL
   * and id or `streamUrl`): one tab, elected with Web Locks, holds the connection and relays
   * each event and state change to the others over BroadcastChannel; when it closes, another
   * tab takes over and resumes after the last event id the tabs saw. A tab joining a stream
   * already open receives the events from then on (`lastEventId` only applies to the tab that
   * opens it). Where Web Locks or BroadcastChannel is missing (Node, old browsers), each
   * subscription opens its own connection. Default false.
   */
  shareAcrossTabs?: boolean;
}

/**
 * A live subscription: an async iterable of events (one iterator per subscription) and/or a
 * source of callbacks. `close()`, the `signal`, or leaving a `for await` loop ends it; the
 * iterator then finishes without throwing. A fatal error is thrown by the iterator after the
 * events received before it.
 */
export interface Subscription extends AsyncIterable<RelayEvent> {
  /**
   * The id of the last event received, or the stream's position the hub sent before any (the
   * greeting's id), or the one given at start; sent on reconnection.
   */
  readonly lastEventId: string | undefined;
  /** True once closed by the user or ended by a fatal error. */
  readonly closed: boolean;
  /** Closes the connection and cancels any pending reconnection. Idempotent. */
  close(): void;
  /**
   * With `consumer`: acknowledges every event up to `id` (default: the last one received) and
   * resolves once the hub committed it; rejects with the hub's code (`HUB_ERR_ACK_INVALID`...),
   * or CLIENT_ERR_INVALID_OPTIONS on a subscription without `consumer`.
   */
  ack(id?: string): Promise<void>;
}

/**
 * Subscribes to `GET /messages/subscribe/:id` over `fetch` (Node 20 and browsers), parsing the
 * stream with eventsource-parser. The hub's greeting (`Subscribed to id ...`) is consumed, not
 * delivered (`onOpen` says when the subscription is live), but its id is kept: a drop before
 * the first message resumes from there, with no gap.
 */
export function subscribe(options: SubscribeOptions): Subscription {
  if (options.shareAcrossTabs === true && options.consumer !== undefined) {
    // A consumer's acknowledgements follow one connection's deliveries; tabs that relay one
    // stream would acknowledge for each other.
    throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'consumer and shareAcrossTabs cannot be combined: give each tab its own consumer');
  }
  if (options.shareAcrossTabs === true && tabSharingAvailable()) {
    return new SharedSubscription(options, streamUrl(options), (direct, hooks) => new RelaySubscription(direct, hooks));
  }
  return new RelaySubscription(options);
}

const DEFAULT_MAX_BUFFERED_EVENTS = 1000;
const DEFAULT_AUTO_ACK_DELAY_MS = 200;
const DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024;
const GREETING_PREFIX = 'Subscribed to id ';
// The hub's comment before a message's fields (src/sse/encode.ts): `: published <ISO 8601>`.
const PUBLISHED_COMMENT = /^published (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)$/;
// The last comment of a consumer's stream that a newer one replaced (src/sse/stream.ts).
const SUPERSEDED_COMMENT = 'closed: a newer stream of this consumer took over';
// A value fetch accepts as a header; anything else goes in `?lastEventId=` (the hub reads both).
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** A stream open this long counts as healthy (backoff reset) even if it carried no event. */
const HEALTHY_CONNECTION_MS = 10_000;

interface ConnectionOutcome {
  /** The hub answered with an event stream. */
  opened: boolean;
  /** It delivered an event or stayed open a while: the next wait starts from the base delay. */
  healthy: boolean;
  /** Not worth retrying (4xx, not an event stream, oversized event). */
  fatal: boolean;
  error: RelayClientError;
  /** From `Retry-After`. */
  retryAfterMs?: number;
}


class RelaySubscription implements Subscription {
  private readonly options: SubscribeOptions;
  private readonly hooks: ConnectionHooks;
  private readonly url: URL;
  private readonly fetchImpl: typeof fetch;
  private readonly stop = new AbortController();
  private readonly queue = new EventQueue<RelayEvent>();
  private readonly waiters: Waiter[] = [];
  private readonly maxBuffered: number;
  private readonly maxEventSize: number;
  private readonly idleTimeoutMs: number;
  private currentLastEventId: string | undefined;
  private retryBaseMs: number;
  private iterating = false;
  private state: 'open' | 'closed' | 'failed' = 'open';
  private failure: RelayClientError | undefined;
  private failureDelivered = false;
  private wakeReader: (() => void) | undefined;
  private readonly acks: ConsumerAcks | undefined;
  private readonly autoAck: boolean;
  /** With autoAck and an iterator: the id of the event handed out last, acknowledged at the next `next()`. */
  private taken: string | undefined;

  constructor(options: SubscribeOptions, hooks: ConnectionHooks = {}) {
    this.options = options;
    this.hooks = hooks;
    this.url = streamUrl(options);
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.currentLastEventId = options.lastEventId;
    this.retryBaseMs = (options.reconnect || {}).initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS;
    this.maxBuffered = Math.max(1, options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS);
    this.maxEventSize = options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (options.consumer !== undefined) {
      const { url, id, consumer, headers } = options;
      const delayMs = typeof options.autoAck === 'object' ? options.autoAck.delayMs ?? DEFAULT_AUTO_ACK_DELAY_MS : DEFAULT_AUTO_ACK_DELAY_MS;
      this.acks = new ConsumerAcks({ url, id: id!, consumer, headers, fetch: options.fetch }, delayMs);
    }
    this.autoAck = this.acks !== undefined && options.autoAck !== undefined && options.autoAck !== false;
    if (!Number.isFinite(this.idleTimeoutMs) || this.idleTimeoutMs < 0) {
      throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', `idleTimeoutMs must be a number of milliseconds >= 0 (0 disables it), got ${String(options.idleTimeoutMs)}`);
    }

    const { signal } = options;
    if (signal?.aborted) {
      this.state = 'closed';
      return;
    }
    signal?.addEventListener('abort', this.close, { once: true });
    void this.run();
  }

  get lastEventId(): string | undefined {
    return this.currentLastEventId;
  }

  get closed(): boolean {
    return this.state !== 'open';
  }

  readonly close = (): void => {
    if (this.state === 'open') this.state = 'closed';
    this.queue.clear();
    this.shutdown();
    this.acks?.flush();
  };

  ack(id: string | undefined = this.currentLastEventId): Promise<void> {
    if (this.acks === undefined) {
      return Promise.reject(new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'ack() needs a subscription with the consumer option'));
    }
    if (id === undefined || id === '' || id === 'earliest') {
      return Promise.reject(new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'Nothing to acknowledge: no event received yet'));
    }
    return this.acks.ack(id);
  }

  private autoAcknowledge(id: string): void {
    this.acks!.later(id, (error) => invoke(this.options.onAckError, error as RelayClientError));
  }

  [Symbol.asyncIterator](): AsyncIterator<RelayEvent> {
    if (this.iterating) throw new TypeError('A subscription can be iterated only once');
    this.iterating = true;
    return subscriptionIterator(() => this.next(), this.close);
  }

  private next(): Promise<IteratorResult<RelayEvent>> {
    if (this.taken !== undefined) {
      this.autoAcknowledge(this.taken);
      this.taken = undefined;
    }
    const event = this.queue.shift();
    if (event !== undefined) {
      if (this.autoAck && event.id !== undefined) this.taken = event.id;
      if (this.queue.size < this.maxBuffered) this.wakeReader?.();
      return Promise.resolve({ done: false, value: event });
    }
    if (this.state === 'failed' && !this.failureDelivered) {
      this.failureDelivered = true;
      return Promise.reject(this.failure);
    }
    if (this.state !== 'open') return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Stops the network side and settles pending `next()` calls. */
  private shutdown(): void {
    this.options.signal?.removeEventListener('abort', this.close);
    this.stop.abort();
    this.wakeReader?.();
    const unreported = this.state === 'failed' && !this.failureDelivered ? this.failure : undefined;
    if (endWaiters(this.waiters.splice(0), unreported)) this.failureDelivered = true;
  }

  private fail(error: RelayClientError): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.failure = error;
    // Nobody will ever see an error thrown by an iterator that does not exist.
    if (!this.iterating && this.options.onError !== undefined) this.failureDelivered = true;
    this.shutdown();
    invoke(this.options.onError, error);
  }

  private deliver(event: RelayEvent): void {
    if (this.state !== 'open') return;
    invoke(this.options.onMessage, event);
    if (this.autoAck && !this.iterating && event.id !== undefined && this.options.onMessage !== undefined) this.autoAcknowledge(event.id);
    if (this.state !== 'open' || (this.options.onMessage !== undefined && !this.iterating)) return;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      if (this.autoAck && event.id !== undefined) this.taken = event.id;
      waiter.resolve({ done: false, value: event });
    }
    else this.queue.push(event);
  }

  private async run(): Promise<void> {
    const reconnect = this.options.reconnect ?? {};
    const maxDelayMs = reconnect === false ? 0 : reconnect.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    let attempt = 0;
    let everOpened = false;
    while (this.state === 'open') {
      const outcome = await this.connect(everOpened, everOpened && this.acks !== undefined);
      if (this.state !== 'open') return;
      if (outcome.opened) everOpened = true;
      // A stream that opens and drops at once (a hub refusing us after the headers) must not
      // reset the backoff, or the client would hammer it at the base delay forever.
      if (outcome.healthy) attempt = 0;
      if (outcome.fatal || reconnect === false) {
        this.fail(outcome.error);
        return;
      }
      const delayMs = reconnectDelay(this.retryBaseMs, maxDelayMs, attempt, outcome.retryAfterMs);
      invoke(this.options.onRetry, { error: outcome.error, delayMs, attempt, everOpened });
      if (this.state !== 'open') return;
      attempt++;
      await wait(delayMs, this.stop.signal);
    }
  }

  /**
   * One connection, from the request to the end of the stream, watched for silence (see
   * {@link IdleWatchdog}). Never throws.
   */
  private async connect(reconnecting: boolean, takeOver: boolean): Promise<ConnectionOutcome> {
    // Its own abort signal, so the watchdog can drop this connection and not the subscription.
    const connection = new AbortController();
    const abortConnection = (): void => connection.abort();
    if (this.stop.signal.aborted) abortConnection();
    else this.stop.signal.addEventListener('abort', abortConnection, { once: true });
    const watchdog = new IdleWatchdog(this.idleTimeoutMs, abortConnection);
    try {
      const outcome = await this.exchange(reconnecting, takeOver, connection.signal, watchdog);
      if (!watchdog.expired || this.state !== 'open') return outcome;
      const error = new RelayClientError('CLIENT_ERR_STREAM_IDLE', `Nothing arrived from the hub for ${this.idleTimeoutMs} ms (idleTimeoutMs); reconnecting`, { cause: outcome.error });
      return { ...outcome, fatal: false, error };
    } finally {
      watchdog.stop();
      this.stop.signal.removeEventListener('abort', abortConnection);
    }
  }

  /**
   * One request and its stream. `takeOver`: a consumer reconnecting after its own stream had
   * opened ends a stream of it the hub still holds open (one that died without a FIN, which the
   * hub may not notice for minutes), instead of waiting behind 409s; a first connection never
   * does, so two processes given the same consumer do not keep taking it from each other.
   */
  private async exchange(reconnecting: boolean, takeOver: boolean, signal: AbortSignal, watchdog: IdleWatchdog): Promise<ConnectionOutcome> {
    const url = new URL(this.url);
    if (takeOver) url.searchParams.set('takeover', '1');
    let headers: Record<string, string>;
    try {
      headers = { ...resolveHeaders(this.options.headers), Accept: 'text/event-stream' };
    } catch (cause) {
      const error = new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'The headers function threw', { cause });
      return { opened: false, healthy: false, fatal: true, error };
    }
    const resumeFrom = this.currentLastEventId;
    if (resumeFrom !== undefined && resumeFrom !== '') {
      if (HEADER_SAFE.test(resumeFrom)) headers['Last-Event-ID'] = resumeFrom;
      else url.searchParams.set('lastEventId', resumeFrom);
    }

    let response: Response;
    try {
      response = await this.fetchImpl(url, { headers, signal });
    } catch (cause) {
      return { opened: false, healthy: false, fatal: false, error: unreachableError(this.options.url, cause) };
    }

    if (!response.ok) {
      const error = await errorFromResponse(response);
      // A consumer's previous connection may not have been seen closing yet: 409 passes.
      const retryable = response.status === 429 || response.status >= 500 || (this.acks !== undefined && response.status === 409);
      const atLeastMs = retryAfterMs(response.headers.get('retry-after'));
      return { opened: false, healthy: false, fatal: !retryable, error, retryAfterMs: atLeastMs };
    }
    const contentType = response.headers.get('content-type') ?? '';
    if (!/^text\/event-stream\b/i.test(contentType) || response.body === null) {
      void response.body?.cancel().catch(() => undefined);
      const error = new RelayClientError(
        'CLIENT_ERR_PROTOCOL',
        `Expected an event stream, got ${contentType ? `"${contentType}"` : 'no content type'} (HTTP ${response.status})`,
        { status: response.status },
      );
      return { opened: false, healthy: false, fatal: true, error };
    }

    invoke(this.options.onOpen, { reconnect: reconnecting, lastEventId: resumeFrom });
    const openedAt = Date.now();
    const { error, delivered } = await this.read(response.body, watchdog);
    const healthy = delivered > 0 || Date.now() - openedAt >= HEALTHY_CONNECTION_MS;
    return { opened: true, healthy, fatal: error.code === 'CLIENT_ERR_EVENT_TOO_LARGE' || error.code === 'CLIENT_ERR_CONSUMER_SUPERSEDED', error };
  }

  /** Reads one stream to its end; returns why it ended. */
  private async read(body: ReadableStream<Uint8Array>, watchdog: IdleWatchdog): Promise<{ error: RelayClientError; delivered: number }> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let firstEvent = true;
    let delivered = 0;
    const end = (error: RelayClientError) => ({ error, delivered });
    let tooLarge: ParseError | undefined;
    const leadingFrame = new LeadingFrame();
    // Set by the comment that starts a message frame, taken by that frame's event.
    let publishedAt: Date | undefined;
    let superseded = false;
    const parser = createParser({
      maxBufferSize: this.maxEventSize,
      onComment: (comment) => {
        if (comment === SUPERSEDED_COMMENT && this.acks !== undefined) superseded = true;
        const time = PUBLISHED_COMMENT.exec(comment)?.[1];
        if (time === undefined) return;
        const date = new Date(time);
        publishedAt = Number.isNaN(date.getTime()) ? undefined : date;
      },
      onRetry: (ms) => {
        this.retryBaseMs = ms;
      },
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded') tooLarge = error;
        // Unknown fields and bad `retry:` values are ignored, as the standard says.
      },
      onEvent: (message: EventSourceMessage) => {
        const isGreeting =
          firstEvent && message.event === undefined && message.data.startsWith(GREETING_PREFIX);
        firstEvent = false;
        const published = publishedAt;
        publishedAt = undefined;
        if (message.id !== undefined) this.currentLastEventId = message.id;
        if (message.id !== undefined && !isGreeting) this.acks?.received(message.id);
        if (isGreeting) {
          if (message.id !== undefined) this.hooks.onPosition?.(message.id);
          return;
        }
        const event: RelayEvent = { event: message.event ?? 'message', data: message.data };
        if (message.id !== undefined) event.id = message.id;
        if (published !== undefined) event.publishedAt = published;
        delivered++;
        this.deliver(event);
      },
    });

    try {
      for (;;) {
        if (this.queue.size >= this.maxBuffered) {
          // Not reading is our choice here, so the silence that follows is not the hub's.
          watchdog.suspend();
          await this.spaceInQueue();
          watchdog.resume();
        }
        if (this.state !== 'open') return end(new RelayClientError('CLIENT_ERR_STREAM_LOST', 'Closed'));
        const { done, value } = await reader.read();
        watchdog.touch();
        if (done && superseded) return end(new RelayClientError('CLIENT_ERR_CONSUMER_SUPERSEDED', `A newer stream of consumer "${this.options.consumer}" took over this one (reconnected with takeover); this subscription stops`));
        if (done) return end(new RelayClientError('CLIENT_ERR_STREAM_LOST', 'The hub closed the event stream'));
        const text = decoder.decode(value, { stream: true });
        const position = leadingFrame.feed(text);
        if (position !== undefined) {
          this.currentLastEventId = position;
          this.hooks.onPosition?.(position);
        }
        parser.feed(text);
        if (tooLarge !== undefined) {
          const message = `An event exceeded ${this.maxEventSize} characters`;
          return end(new RelayClientError('CLIENT_ERR_EVENT_TOO_LARGE', message, { cause: tooLarge }));
        }
      }
    } catch (cause) {
      const reason = String((cause as Error | undefined)?.message ?? cause);
      return end(new RelayClientError('CLIENT_ERR_STREAM_LOST', `The event stream broke: ${reason}`, { cause }));
    } finally {
      // An incomplete event at the end of a stream is dropped, as the standard says.
      parser.reset();
      reader.cancel().catch(() => undefined);
    }
  }

  private spaceInQueue(): Promise<void> {
    return new Promise((resolve) => {
      this.wakeReader = () => {
        this.wakeReader = undefined;
        resolve();
      };
    });
  }
}

function streamUrl(options: SubscribeOptions): URL {
  if (options.consumer !== undefined) {
    if (options.streamUrl !== undefined) throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'consumer works with id, not with streamUrl');
    if (typeof options.consumer !== 'string' || !/^[A-Za-z0-9._~-]{1,64}$/.test(options.consumer)) {
      throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'A consumer name is 1 to 64 characters of A-Z, a-z, 0-9, ".", "_", "~" and "-"');
    }
    const url = messagesUrl(options.url, 'subscribe', options.id);
    url.searchParams.set('consumer', options.consumer);
    return url;
  }
  if (options.streamUrl === undefined) return messagesUrl(options.url, 'subscribe', options.id);
  try {
    return new URL(options.streamUrl, options.url);
  } catch (cause) {
    throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', `Invalid stream URL: ${JSON.stringify(options.streamUrl)}`, { cause });
  }
}

/** Listener errors must not break the stream: report them the way EventTarget does. */
function invoke<A>(callback: ((arg: A) => void) | undefined, arg: A): void {
  if (callback === undefined) return;
  try {
    callback(arg);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
