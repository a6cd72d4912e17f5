import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { RelayError } from '../../hub/errors.js';
import type { ClosableSink } from '../../hub/hub.js';
import type { Message } from '../../hub/message.js';
import { TopicMatcherSet, type MatcherSpec } from '../../hub/topic-matcher.js';
import type { AdapterContext } from '../../http/context.js';
import { encodeRetry } from '../../sse/encode.js';
import { SseStream } from '../../sse/stream.js';
import { MERCURE_PATH } from './discovery.js';
import { mercureErrorHandler } from './errors.js';

/** Most matchers one subscription may carry (Mercure's limit too). */
export const MAX_MATCHERS = 100;
/** Longest accepted `Last-Event-ID`; longer ones are unknown ids (replay from the oldest). */
const MAX_LAST_EVENT_ID_LENGTH = 1024;

/** Query parameter → matcher type. `topic` is hub 0.x's, whose selectors are URI templates. */
const MATCHER_PARAMETERS: Readonly<Record<string, MatcherSpec['type']>> = {
  match: 'exact',
  match_exact: 'exact',
  match_urlpattern: 'urlpattern',
  topic: 'uritemplate',
};
const RESERVED_PREFIX = 'match';

/** A subscription request, read from the query and headers. */
export interface MercureSubscription {
  readonly matchers: readonly MatcherSpec[];
  /** Where to resume; `earliest` for everything retained; undefined: live only. */
  readonly lastEventId: string | undefined;
}

/**
 * Reads the matchers and the cursor of a subscription.
 *
 * - `match` (alias `match_exact`) and `match_urlpattern` (Mercure 1.x), `topic` (hub 0.x: exact
 *   topics or URI templates); `*` is the wildcard for each. Any other name starting with `match`
 *   is reserved and refused (a typo fails loudly instead of matching nothing); names are
 *   case-sensitive.
 * - The cursor: the `Last-Event-ID` header wins, then `last_event_id`, then hub 0.x's
 *   `lastEventID`, then draft 7's `Last-Event-ID` query parameter.
 * Throws HUB_ERR_MATCHER_INVALID (400).
 */
export function readSubscription(rawUrl: string, headers: IncomingHttpHeaders): MercureSubscription {
  const queryStart = rawUrl.indexOf('?');
  const params = new URLSearchParams(queryStart < 0 ? '' : rawUrl.slice(queryStart + 1));
  const matchers: MatcherSpec[] = [];
  for (const [name, value] of params) {
    const type = MATCHER_PARAMETERS[name];
    if (type === undefined) {
      if (name.startsWith(RESERVED_PREFIX)) throw new RelayError('HUB_ERR_MATCHER_INVALID', `Unknown matcher parameter "${name.slice(0, 64)}": use match, match_exact or match_urlpattern`);
      continue;
    }
    if (value.length === 0) throw new RelayError('HUB_ERR_MATCHER_INVALID', `The ${name} parameter must not be empty`);
    matchers.push({ type, match: value });
  }
  if (matchers.length === 0) throw new RelayError('HUB_ERR_MATCHER_INVALID', 'At least one match (or topic) parameter is required');
  if (matchers.length > MAX_MATCHERS) throw new RelayError('HUB_ERR_MATCHER_INVALID', `A subscription may have at most ${MAX_MATCHERS} matchers`);

  const header = headers['last-event-id'];
  const candidates = [Array.isArray(header) ? header[0] : header, params.get('last_event_id'), params.get('lastEventID'), params.get('Last-Event-ID')];
  let lastEventId: string | undefined;
  for (const candidate of candidates) {
    const trimmed = candidate?.trim();
    if (trimmed) {
      lastEventId = trimmed;
      break;
    }
  }
  // No store issues ids with NUL, so an over-long id resolves as unknown (a gap).
  if (lastEventId !== undefined && lastEventId.length > MAX_LAST_EVENT_ID_LENGTH) lastEventId = '\u0000too-long';
  return { matchers, lastEventId };
}

/**
 * `GET /.well-known/mercure`: a Mercure subscription on the shared hub. Exact-only
 * subscriptions are indexed by topic; any pattern or `*` subscribes to every topic and filters
 * with the matchers. Either way, each message, live or replayed, also passes the private-update
 * check against the subscriber's token.
 */
export function registerMercureSubscribeRoute(app: FastifyInstance, context: AdapterContext): void {
  const { hub, options, heartbeats, authorizer, tokenExpiry } = context;
  app.get(MERCURE_PATH, { errorHandler: mercureErrorHandler }, async (request, reply) => {
    const principal = await authorizer.authenticate('subscriber', request.headers);
    const { matchers: specs, lastEventId } = readSubscription(request.raw.url ?? '', request.headers);
    const matchers = TopicMatcherSet.compile(specs, options.publicUrl);
    const mayReceive = (message: Message): boolean => authorizer.mayReceive(principal, message);

    let stream: SseStream | undefined;
    const sink: ClosableSink = {
      deliver: (message, frame) => stream!.deliver(message, frame),
      get closed() {
        return stream?.closed ?? false;
      },
      close: (reason) => stream?.close(reason),
    };
    // Registered before the cursor is resolved and history read, so nothing committed from now
    // on is missed (the hub holds live messages until the replay is done).
    const subscription = hub.open(
      matchers.exactOnly
        ? { api: 'mercure', topics: [...matchers.exactTopics], accepts: mayReceive }
        : { api: 'mercure', topics: undefined, accepts: (message) => matchers.testAny(message.topics) && mayReceive(message) },
      sink,
    );
    let cursor;
    try {
      cursor = await hub.resolveCursor(lastEventId, matchers.exactOnly ? [...matchers.exactTopics] : undefined);
    } catch (error) {
      hub.unsubscribe(subscription);
      throw error;
    }

    const headers: Record<string, string> = {};
    // Tells the client where the replay really starts: its id when the hub still has it,
    // `earliest` when it replays everything retained instead.
    if (lastEventId !== undefined) headers['Mercure-Last-Event-ID'] = cursor?.gap || lastEventId === 'earliest' ? 'earliest' : lastEventId;

    reply.hijack();
    stream = new SseStream(reply.raw, { maxBacklogBytes: options.maxBacklog, headers });
    stream.onClose(() => {
      hub.unsubscribe(subscription);
      heartbeats.delete(stream!);
      tokenExpiry.delete(stream!);
    });
    if (reply.raw.destroyed || request.raw.socket.destroyed) {
      hub.unsubscribe(subscription);
      return;
    }
    stream.open();
    heartbeats.add(stream);
    tokenExpiry.add(stream, principal.expiresAt);
    // The first bytes: a reconnection hint. No `id:`, so the client's cursor does not move.
    stream.send(Buffer.from(encodeRetry(options.retry)));
    await hub.resume(subscription, cursor);
  });
}
