import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SlowConsumerPolicy } from '../config/options.js';
import type { ConsumerSession } from '../hub/consumers.js';
import type { SubscriptionSelector } from '../hub/subscription.js';
import type { EventStreamResponse } from '../sse/stream.js';
import type { Cursor } from '../store/store.js';

/** Longest accepted `Last-Event-ID`; longer ones are treated as unknown ids (a gap). */
export const MAX_LAST_EVENT_ID_LENGTH = 1024;

/**
 * Normalises a client's cursor: blank means none; an over-long one becomes an id no store
 * issues (ids never contain NUL), so it resolves as unknown and the client is told of a gap.
 * Garbage cursors are not an error: the client gets everything retained and the gap signal.
 */
export function normaliseLastEventId(raw: string | null | undefined): string | undefined {
  // Only HTTP's optional whitespace (a header cannot carry it anyway): an id that starts or
  // ends with another space character, U+3000 or U+00A0 say, must still resume exactly.
  const trimmed = raw?.replace(/^[ \t]+|[ \t]+$/g, '');
  if (!trimmed) return undefined;
  return trimmed.length > MAX_LAST_EVENT_ID_LENGTH ? OVERLONG_LAST_EVENT_ID : trimmed;
}

// Never shown to a client: see shownLastEventId.
const OVERLONG_LAST_EVENT_ID = '\u0000too-long';

/** A normalised cursor as a client may be shown it (in a `gap` event): the marker explained. */
export function shownLastEventId(cursor: string | undefined): string | undefined {
  return cursor === OVERLONG_LAST_EVENT_ID ? `(a Last-Event-ID longer than ${MAX_LAST_EVENT_ID_LENGTH} characters, not shown)` : cursor;
}

/** What a protocol decides about one event stream (see EventStreams.open). */
export interface EventStreamRequest extends EventStreamDescription {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
}

/**
 * The HTTP side of one event stream (see EventStreams.openOn): Fastify's request and reply, or
 * the raw subscribe path's socket (raw-subscribe.ts).
 */
export interface EventStreamTransport {
  readonly response: EventStreamResponse;
  /** Headers set before the stream takes the response (CORS, discovery), sent with its own. */
  presetHeaders(): Record<string, string>;
  /** Takes the response from whoever held it (Fastify: `reply.hijack()`); called once. */
  takeOver(): void;
  /** True when the client is gone already. */
  readonly gone: boolean;
}

/** What a protocol decides about one event stream, whatever serves its HTTP. */
export interface EventStreamDescription {
  /** Which messages the subscription receives. */
  readonly selector: SubscriptionSelector;
  /** Topics the cursor is resolved for (gap detection); undefined: every topic. */
  readonly cursorTopics: readonly string[] | undefined;
  /** The client's cursor, already normalised; undefined: live only. */
  readonly lastEventId: string | undefined;
  /**
   * For an acknowledged consumer: opens its session once the subscription is registered (given
   * the subscription's position); the session's cursor and history replace `lastEventId`'s, and
   * it ends with the stream.
   */
  readonly consumer?: ((registeredAfterSeq: number) => Promise<ConsumerSession>) | undefined;
  /** The subscriber's slow-consumer policy (`?slow=`); undefined: `--slow-consumer-policy`. */
  readonly slowPolicy?: SlowConsumerPolicy | undefined;
  /** When the subscriber's token expires (ms since epoch), if it does. */
  readonly expiresAt: number | undefined;
  /** Protocol-specific response headers, once the cursor is known. */
  headers(cursor: Cursor | undefined): Record<string, string> | undefined;
  /**
   * Frames sent before any message (greeting, retry hint, gap notice), once the cursor is known.
   * The first must carry `startId` as its `id:`: the stream's position before its first message,
   * from which a client that drops before receiving one resumes with no gap and no duplicate.
   */
  preamble(cursor: Cursor | undefined, startId: string): Buffer[];
  /**
   * Told when the stream opened (its headers are out), then once when it ended, whatever the
   * reason; never told of a stream that did not open. Mercure's active subscriptions use it.
   */
  readonly lifecycle?: { opened(): void; ended(): void } | undefined;
}
