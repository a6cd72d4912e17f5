import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { AuthorizedSelector } from '../../auth/authorized-selector.js';
import type { ConsumerConflict } from '../../hub/consumers.js';
import { RelayError } from '../../hub/errors.js';
import { assertValidTopic } from '../../hub/message.js';
import type { AdapterContext } from '../../http/context.js';
import { rawRefusalOf } from '../../http/raw-subscribe.js';
import { encodeEvent } from '../../sse/encode.js';
import { headerText } from '../../sse/last-event-id.js';
import { normaliseLastEventId, shownLastEventId, type EventStreamDescription } from '../../http/event-stream.js';
import { readSlowPolicy } from '../../http/event-streams.js';
import type { LostRange } from '../../store/consumer-log.js';
import { consumerCaller } from './consumer-caller.js';

/** Response header set when the requested cursor could not be resumed exactly. */
export const GAP_HEADER = 'Replay-Gap';

const GAP_MESSAGE =
  'The requested event id is unknown or no longer retained; replaying from the oldest retained message. Messages may have been missed.';

/** The route's parameters and query. */
export interface SubscribeRequest {
  Params: { id: string };
  Querystring: { lastEventId?: string | string[]; slow?: string | string[]; consumer?: string | string[]; takeover?: string | string[] };
}

/**
 * `GET /messages/subscribe/:id`: the article's subscription, as a spec-exact event stream.
 * First event: `Subscribed to id <id>` with the `retry:` hint and, as its `id:`, the stream's
 * position (so a client that drops before any message resumes from there); then, when the client resumes (`Last-Event-ID` header, or
 * `?lastEventId=`, header wins; `earliest` for everything retained), a `gap` event if its
 * cursor could not be resumed exactly, the retained history, and the live messages.
 * With a subscriber key, the token must grant `subscribe` on the id unless `--anonymous`.
 * With `?consumer=NAME` the stream is an acknowledged consumer's (see README "Acknowledged
 * consumers"): it replays what the consumer holds after its last acknowledgement, whatever
 * `Last-Event-ID` says (which only places a new consumer's start). `&takeover=1` ends a stream
 * of the same consumer still open in this process instead of answering 409.
 */
export function registerSubscribeRoute(app: FastifyInstance, context: AdapterContext): void {
  app.get<SubscribeRequest>('/messages/subscribe/:id', async (request, reply) => {
    // The raw path tried this request first and met an error: that is the answer.
    const refusal = rawRefusalOf(request.raw);
    if (refusal) throw refusal.error;
    const stream = await describeSubscribeStream(context, request.params.id, request.headers, request.query);
    await context.streams.open({ ...stream, request, reply });
  });
}

/**
 * The subscribe rules of `GET /messages/subscribe/:id`, whatever serves its HTTP (the Fastify
 * route, or the raw path, which passes an empty query): authenticates and authorises the
 * subscriber (throws the route's errors), reads its cursor and options, and describes its stream.
 */
export async function describeSubscribeStream(
  context: AdapterContext,
  topic: string,
  requestHeaders: IncomingHttpHeaders,
  query: SubscribeRequest['Querystring'],
): Promise<EventStreamDescription> {
  const { options, authorizer } = context;
  const principal = await authorizer.authenticate('subscriber', requestHeaders);
  assertValidTopic(topic);
  authorizer.assertMaySubscribe(principal, topic);
  const lastEventId = pickLastEventId(requestHeaders['last-event-id'], query.lastEventId);
  const slowPolicy = readSlowPolicy(query.slow);
  const consumerName = query.consumer;
  const conflict = readTakeover(query.takeover, consumerName !== undefined);
  // What an acknowledged consumer lost past --consumer-max-pending, told after the greeting.
  let lost: LostRange | null = null;
  const consumer = consumerName === undefined
    ? undefined
    : async (registeredAfterSeq: number) => {
        const session = await context.consumers.connect(topic, String(consumerName), consumerCaller(principal), registeredAfterSeq, lastEventId, conflict);
        lost = session.lost;
        return session;
      };
  return {
    // Private updates (published through Mercure) only reach tokens granted all their topics.
    selector: new AuthorizedSelector('messages', [topic], authorizer, principal),
    cursorTopics: [topic],
    lastEventId,
    consumer,
    slowPolicy,
    expiresAt: principal.expiresAt,
    headers: (cursor) => (cursor?.gap ? { [GAP_HEADER]: 'true' } : undefined),
    preamble: (cursor, startId) => {
      const frames = [Buffer.from(encodeEvent({ id: startId, data: `Subscribed to id ${topic}`, retry: options.retry }))];
      if (cursor?.gap) frames.push(Buffer.from(encodeEvent({ event: 'gap', data: JSON.stringify({ lastEventId: shownLastEventId(lastEventId), message: GAP_MESSAGE }) })));
      if (lost) frames.push(Buffer.from(encodeEvent({ event: 'gap', data: JSON.stringify({ reason: 'consumer-max-pending', ...lost }) })));
      return frames;
    },
  };
}

/** `?takeover=1`: only with `?consumer=`, once, `1` or `true`. */
function readTakeover(raw: string | string[] | undefined, withConsumer: boolean): ConsumerConflict {
  if (raw === undefined) return 'refuse';
  if (!withConsumer) throw new RelayError('HUB_ERR_BAD_REQUEST', '?takeover= applies to an acknowledged consumer\'s stream: give ?consumer= too');
  if (raw !== '1' && raw !== 'true') throw new RelayError('HUB_ERR_BAD_REQUEST', '?takeover= must be 1 or true, given once');
  return 'take-over';
}

function pickLastEventId(header: string | string[] | undefined, query: string | string[] | undefined): string | undefined {
  const raw = headerText(header) ?? query;
  return normaliseLastEventId(Array.isArray(raw) ? raw[0] : raw);
}
