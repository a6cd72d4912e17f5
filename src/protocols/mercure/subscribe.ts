import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthorizedSelector } from '../../auth/authorized-selector.js';
import { RelayError } from '../../hub/errors.js';
import { unprintableIn } from '../../hub/message.js';
import { TopicMatcherSet, type MatcherSpec } from '../../hub/topic-matcher.js';
import type { AdapterContext } from '../../http/context.js';
import { encodePosition } from '../../sse/encode.js';
import { asHeaderValue, headerText } from '../../sse/last-event-id.js';
import { normaliseLastEventId } from '../../http/event-stream.js';
import { readSlowPolicy } from '../../http/event-streams.js';
import { MERCURE_PATH } from './discovery.js';
import type { MercureErrorHandler } from './errors.js';
import { ActiveSubscriptions } from './subscriptions.js';

/** Most matchers one subscription may carry (Mercure's limit too). */
export const MAX_MATCHERS = 100;

/** Query parameter → matcher type. `topic` is hub 0.x's, whose selectors are URI templates. */
const MATCHER_PARAMETERS: Readonly<Record<string, MatcherSpec['type']>> = {
  match: 'exact',
  match_exact: 'exact',
  match_urlpattern: 'urlpattern',
  topic: 'uritemplate',
};
const RESERVED_PREFIX = 'match';
const FORM = 'application/x-www-form-urlencoded';

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
 * - Values with C0 or C1 control characters or DEL are refused (the spec's value constraint).
 * - `body`: the form of a `QUERY` request, whose pairs join the query's (the spec's union).
 * Throws HUB_ERR_MATCHER_INVALID (400).
 */
export function readSubscription(rawUrl: string, headers: IncomingHttpHeaders, body?: URLSearchParams): MercureSubscription {
  const queryStart = rawUrl.indexOf('?');
  const params = new URLSearchParams(queryStart < 0 ? '' : rawUrl.slice(queryStart + 1));
  // A QUERY body adds its pairs after the query's: the union of both, where a single-valued
  // parameter (the cursor) is the query's when both carry it, since `get` returns the first.
  if (body !== undefined) for (const [name, value] of body) params.append(name, value);
  const matchers: MatcherSpec[] = [];
  for (const [name, value] of params) {
    const type = MATCHER_PARAMETERS[name];
    if (type === undefined) {
      if (name.startsWith(RESERVED_PREFIX)) throw new RelayError('HUB_ERR_MATCHER_INVALID', `Unknown matcher parameter "${name.slice(0, 64)}": use match, match_exact or match_urlpattern`);
      continue;
    }
    if (value.length === 0) throw new RelayError('HUB_ERR_MATCHER_INVALID', `The ${name} parameter must not be empty`);
    // C0 and C1 controls and DEL (the spec's value constraint) and bidirectional formatting
    // characters: no topic has them, so a matcher with one could never match anything.
    const unprintable = unprintableIn(value);
    if (unprintable !== undefined) throw new RelayError('HUB_ERR_MATCHER_INVALID', `The ${name} parameter must not contain ${unprintable}`);
    matchers.push({ type, match: value });
  }
  if (matchers.length === 0) throw new RelayError('HUB_ERR_MATCHER_INVALID', 'At least one match (or topic) parameter is required');
  if (matchers.length > MAX_MATCHERS) throw new RelayError('HUB_ERR_MATCHER_INVALID', `A subscription may have at most ${MAX_MATCHERS} matchers`);

  const candidates = [headerText(headers['last-event-id']), params.get('last_event_id'), params.get('lastEventID'), params.get('Last-Event-ID')];
  const lastEventId = candidates.map(normaliseLastEventId).find((candidate) => candidate !== undefined);
  return { matchers, lastEventId };
}

/**
 * `GET /.well-known/mercure`, and `QUERY` (RFC 10008) with the same parameters in an
 * `application/x-www-form-urlencoded` body (for matcher lists too long for a URL): a Mercure
 * subscription on the shared hub. Exact-only subscriptions are indexed by topic; with a
 * pattern, the hub groups the subscription with those of the same selector set and tests the
 * set once per message for the group; `*` receives every message. At most
 * `--max-subscription-patterns` patterns (HUB_ERR_MATCHER_LIMIT, 400). Either way, each
 * message, live or replayed, also passes the private-update check against the subscriber's
 * token.
 */
export function registerMercureSubscribeRoute(app: FastifyInstance, context: AdapterContext, errorHandler: MercureErrorHandler, active: ActiveSubscriptions | undefined): void {
  const { options, authorizer } = context;
  const subscribe = async (request: FastifyRequest, reply: FastifyReply, body: URLSearchParams | undefined): Promise<void> => {
    const principal = await authorizer.authenticate('subscriber', request.headers);
    const { matchers: specs, lastEventId } = readSubscription(request.raw.url ?? '', request.headers, body);
    const matchers = TopicMatcherSet.compile(specs, options.publicUrl);
    if (matchers.patternCount > options.maxSubscriptionPatterns) {
      throw new RelayError(
        'HUB_ERR_MATCHER_LIMIT',
        `A subscription may have at most ${options.maxSubscriptionPatterns} URL patterns and URI templates (it has ${matchers.patternCount}); use exact topics (match=) for the others`,
      );
    }
    if (active !== undefined) ActiveSubscriptions.assertAnnounceable(specs);

    await context.streams.open({
      request,
      reply,
      // Exact-only subscriptions are indexed by topic; `*` sees every message; the others are
      // grouped by selector set (its key), tested once per message for the whole group.
      selector: matchers.exactOnly
        ? new AuthorizedSelector('mercure', [...matchers.exactTopics], authorizer, principal)
        : new AuthorizedSelector('mercure', undefined, authorizer, principal, matchers.matchesEverything ? undefined : matchers),
      cursorTopics: matchers.exactOnly ? [...matchers.exactTopics] : undefined,
      lastEventId,
      // The slow-consumer policy (`?slow=`: disconnect, skip, latest), as on /messages.
      slowPolicy: readSlowPolicy(new URL(request.raw.url ?? '/', 'http://hub').searchParams.getAll('slow')),
      expiresAt: principal.expiresAt,
      // Tells the client where the replay really starts: its id when the hub still has it,
      // `earliest` when it replays everything retained instead.
      headers: (cursor) =>
        // A custom id may be any Unicode text: non-ASCII ones go percent-encoded (see last-event-id.ts).
        lastEventId === undefined ? undefined : { 'Mercure-Last-Event-ID': cursor?.gap || lastEventId === 'earliest' ? 'earliest' : asHeaderValue(lastEventId) },
      // The first bytes: the stream's position as an `id:` without data (no event is dispatched,
      // but a client that drops before any update resumes from there) and a reconnection hint.
      preamble: (_cursor, startId) => [Buffer.from(encodePosition(startId, options.retry))],
      // With --subscriptions: one subscription event per matcher when the stream opens and ends.
      lifecycle: active?.follow(specs, principal),
    });
  };
  app.get(MERCURE_PATH, { errorHandler }, (request, reply) => subscribe(request, reply, undefined));
  // Its own scope: there the form is kept as URLSearchParams, so the body is parsed by the
  // very algorithm the spec names for the query (and EventSource uses), not a look-alike.
  void app.register(async (scope) => {
    scope.removeContentTypeParser(FORM);
    scope.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: options.maxBodySize }, (_request, text, done) => done(null, new URLSearchParams(text as string)));
    scope.route({
      method: 'QUERY',
      url: MERCURE_PATH,
      errorHandler,
      handler: (request, reply) => subscribe(request, reply, request.body instanceof URLSearchParams ? request.body : new URLSearchParams()),
    });
  });
}
