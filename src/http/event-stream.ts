import type { FastifyReply, FastifyRequest } from 'fastify';
import { RelayError } from '../hub/errors.js';
import type { SubscriptionSelector } from '../hub/subscription.js';
import { SseStream } from '../sse/stream.js';
import type { Cursor } from '../store/store.js';
import type { AdapterContext } from './context.js';

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

/** What a protocol decides about one event stream. */
export interface EventStreamRequest {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly context: AdapterContext;
  /** Which messages the subscription receives. */
  readonly selector: SubscriptionSelector;
  /** Topics the cursor is resolved for (gap detection); undefined: every topic. */
  readonly cursorTopics: readonly string[] | undefined;
  /** The client's cursor, already normalised; undefined: live only. */
  readonly lastEventId: string | undefined;
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
}

/**
 * Opens a subscription as an event stream, the same way for every protocol, in the only order
 * that is gap-free: register the subscription (the hub holds live messages for it), resolve the
 * cursor, send headers and preamble, replay history, then go live. Cleans up on every path:
 * a failure before the stream opens unregisters the subscription and is answered by Fastify;
 * the stream's close (client gone, slow consumer, shutdown) unregisters it and its timers.
 */
export async function openEventStream(args: EventStreamRequest): Promise<void> {
  const { request, reply, context } = args;
  const { hub, options, heartbeats, tokenExpiry } = context;

  // The stream is the hub's sink. It exists before the response starts: the hub may dispatch
  // while the cursor resolves, and holds those messages because the subscription starts in
  // the replaying state. It writes nothing until it is opened.
  const stream = new SseStream(reply.raw, { maxBacklogBytes: options.maxBacklog });
  const subscription = hub.open(args.selector, stream);
  let cursor: Cursor | undefined;
  let headers: Record<string, string> | undefined;
  try {
    cursor = await hub.resolveCursor(args.lastEventId, args.cursorTopics);
    headers = args.headers(cursor);
    // Ended while the cursor resolved: the hub shut down, or held more than it may for us.
    if (stream.closed && !reply.raw.destroyed) throw new RelayError(hub.isReady() ? 'HUB_ERR_SUBSCRIBER_BEHIND' : 'HUB_ERR_SHUTTING_DOWN');
  } catch (error) {
    hub.unsubscribe(subscription);
    throw error;
  }

  reply.hijack();
  stream.subscription = subscription;
  stream.onClose(context.releaseStream);
  if (stream.closed || reply.raw.destroyed || request.raw.socket.destroyed) {
    hub.unsubscribe(subscription);
    return;
  }
  // Headers that hooks set on the reply (CORS, discovery) go out with the stream's own, in one
  // writeHead (see SseStream.open).
  stream.open({ ...reply.getHeaders(), ...headers } as Record<string, string>);
  heartbeats.add(stream);
  tokenExpiry.add(stream, args.expiresAt);
  for (const frame of args.preamble(cursor, hub.startIdOf(subscription, cursor))) stream.send(frame);
  await hub.resume(subscription, cursor);
}
