import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../auth/authorizer.js';
import { authorizationError, BearerChallenge } from '../../auth/bearer.js';
import { RelayError } from '../../hub/errors.js';
import type { Hub } from '../../hub/hub.js';
import { MAX_TOPIC_LENGTH } from '../../hub/message.js';
import type { MatcherSpec } from '../../hub/topic-matcher.js';
import type { AdapterContext } from '../../http/context.js';
import { hubUrl } from './discovery.js';
import type { MercureErrorHandler } from './errors.js';
import { matcherCollectionId, subscriptionTopic, SUBSCRIPTIONS_PATH, type MatcherFilter, type SubscriptionDocument } from './subscription-document.js';
import type { SubscriptionRegistry } from './subscription-registry.js';

/** The matcher type names of subscription events: Mercure's canonical names; hub 0.x's `topic` is `uritemplate`. */
const MATCH_TYPE_NAMES: Readonly<Record<MatcherSpec['type'], string>> = { exact: 'exact', urlpattern: 'urlpattern', uritemplate: 'uritemplate' };

/** Most subscriptions one collection answer lists. */
export const MAX_LISTED = 10_000;

/** One connection's subscriptions, one per matcher. */
interface Subscriber {
  readonly documents: SubscriptionDocument[];
  /** The `active: true` events, which the `active: false` ones must follow. */
  created: Promise<unknown>;
}

/**
 * Mercure's active subscriptions: the documents of open subscriptions, kept in a
 * {@link SubscriptionRegistry} (this process's, or every node's on Redis) for the API to list,
 * and the subscription events, published through the hub (so every node's subscribers receive
 * them) as private updates of type `mercure`.
 *
 * The registry reflects a change before its event is published, and the API reads its cursor
 * before the registry: a client that lists, then subscribes from the cursor, misses no change
 * (it may see one twice, which is harmless, as events carry the whole state).
 */
export class ActiveSubscriptions {
  constructor(
    private readonly hub: Hub,
    private readonly registry: SubscriptionRegistry,
    private readonly onError: (error: unknown) => void,
  ) {
    registry.setListener({
      orphaned: (documents) => void this.announce(documents.map((document) => ({ ...document, active: false }))),
      reinstated: (documents) => void this.announce(documents),
    });
  }

  /**
   * Checks that the events of `specs` fit in a topic, so that a subscription the hub could not
   * announce is refused (400 HUB_ERR_MATCHER_LIMIT) before it starts. A subscriber id is a
   * `urn:uuid:` (45 characters).
   */
  static assertAnnounceable(specs: readonly MatcherSpec[]): void {
    const sample = `urn:uuid:${randomUUID()}`;
    for (const spec of specs) {
      if (subscriptionTopic(MATCH_TYPE_NAMES[spec.type], spec.match, sample).length > MAX_TOPIC_LENGTH) {
        throw new RelayError('HUB_ERR_MATCHER_LIMIT', `With active subscriptions on, a matcher must fit a subscription topic of ${MAX_TOPIC_LENGTH} characters once percent-encoded`);
      }
    }
  }

  /** Follows one connection: `opened` registers and announces its subscriptions, `ended` ends them. */
  follow(specs: readonly MatcherSpec[], principal: Principal): { opened(): void; ended(): void } {
    let state: 'new' | 'open' | 'ended' = 'new';
    let subscriber: Subscriber | undefined;
    return {
      opened: () => {
        if (state !== 'new') return;
        state = 'open';
        subscriber = this.start(specs, principal);
      },
      ended: () => {
        const was = state;
        state = 'ended';
        if (was === 'open' && subscriber !== undefined) this.end(subscriber);
      },
    };
  }

  /**
   * Every open subscription, or those of one matcher; at most {@link MAX_LISTED} (the spec lets
   * a hub truncate collections), so that an answer stays bounded however many are open.
   */
  list(matcher?: MatcherFilter): Promise<SubscriptionDocument[]> {
    return this.registry.list(matcher, MAX_LISTED);
  }

  /** One open subscription by its id (its topic). */
  get(id: string): Promise<SubscriptionDocument | undefined> {
    return this.registry.get(id);
  }

  private start(specs: readonly MatcherSpec[], principal: Principal): Subscriber {
    // Hub-generated and random: never from the client, unique per connection, and it does not
    // disclose the token's `sub` to the other subscribers of these events.
    const id = `urn:uuid:${randomUUID()}`;
    const documents: SubscriptionDocument[] = [];
    const seen = new Set<string>();
    for (const spec of specs) {
      const matchType = MATCH_TYPE_NAMES[spec.type];
      const topic = subscriptionTopic(matchType, spec.match, id);
      // The same matcher twice on one connection is one subscription.
      if (seen.has(topic)) continue;
      seen.add(topic);
      const payload = principal.grants?.payloadFor(spec.match);
      documents.push({ id: topic, type: 'subscription', match_type: matchType, match: spec.match, subscriber: id, active: true, ...(payload === undefined ? {} : { payload }) });
    }
    const registered = this.registry.add(documents).catch(this.onError);
    return { documents, created: registered.then(() => this.announce(documents)) };
  }

  private end(subscriber: Subscriber): void {
    // At shutdown the hub publishes nothing more: a shared registry hands what is still open
    // to the surviving nodes, which announce it ended (see its close()).
    if (this.hub.isShuttingDown && this.registry.handsOverAtShutdown) return;
    const removed = this.registry.remove(subscriber.documents).catch(this.onError);
    const ended = subscriber.documents.map((document) => ({ ...document, active: false }));
    void Promise.all([subscriber.created, removed]).then(() => this.announce(ended));
  }

  private announce(documents: readonly SubscriptionDocument[]): Promise<unknown> {
    return Promise.all(
      documents.map((document) =>
        this.hub.publish({ topics: [document.id], data: JSON.stringify(document), private: true, type: 'mercure' }).catch(this.onError),
      ),
    );
  }
}

/**
 * The subscriptions API: `GET /.well-known/mercure/subscriptions`, `…/{match_type}/{match}` and
 * `…/{match_type}/{match}/{subscriber}`, as JSON, with the hub's cursor on the `rel="mercure"`
 * Link header. The token must grant `subscribe` on the requested path (the topic of the
 * matching events), or 403; no token: 401.
 */
export function registerSubscriptionsApi(app: FastifyInstance, context: AdapterContext, active: ActiveSubscriptions, errorHandler: MercureErrorHandler): void {
  const { hub, authorizer, options } = context;
  const hubLink = `<${hubUrl(options)}>; rel="mercure"`;

  const answer = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const rawUrl = request.raw.url ?? '';
    const queryStart = rawUrl.indexOf('?');
    const segments = (queryStart < 0 ? rawUrl : rawUrl.slice(0, queryStart)).slice(SUBSCRIPTIONS_PATH.length).split('/').slice(1);
    if (segments.length > 3 || segments.some((s) => s.length === 0)) throw new RelayError('HUB_ERR_NOT_FOUND', 'No such subscription resource');
    let values: string[];
    try {
      values = segments.map(decodeURIComponent);
    } catch {
      throw new RelayError('HUB_ERR_NOT_FOUND', 'No such subscription resource');
    }
    const [matchType, match, subscriber] = values;
    // The canonical form of the path, which is also the topic of the matching events: what the
    // token must grant (a differently encoded request names the same resource and topic).
    const id =
      subscriber !== undefined
        ? subscriptionTopic(matchType!, match!, subscriber)
        : match !== undefined
          ? matcherCollectionId({ matchType: matchType!, match })
          : SUBSCRIPTIONS_PATH;
    if (matchType !== undefined && match === undefined) throw new RelayError('HUB_ERR_NOT_FOUND', 'No such subscription resource');

    const principal = await authorizer.authenticate('subscriber', request.headers);
    assertMayRead(principal, id);

    // The cursor before the registry: a change the list misses was announced after the list was
    // read, so its event comes after this cursor (see ActiveSubscriptions).
    const seq = hub.store.dispatchedThrough();
    const lastEventID = seq > 0 ? String(seq) : 'earliest';
    let body: unknown;
    if (subscriber !== undefined) {
      body = await active.get(id);
      if (body === undefined) throw new RelayError('HUB_ERR_NOT_FOUND', 'No such active subscription');
    } else {
      body = { id, type: 'subscriptions', lastEventID, subscriptions: await active.list(match === undefined ? undefined : { matchType: matchType!, match }) };
    }
    const text = JSON.stringify(body);
    const etag = entityTag(text);
    void reply
      .header('Link', `${hubLink}; last-event-id="${lastEventID}"; type="mercure"; content-type="application/json"`)
      .header('ETag', etag)
      // The data is volatile (the spec asks clients to validate a cached copy before using it):
      // `no-cache` makes every cache revalidate before each use, where `must-revalidate` alone
      // would let it serve a copy it deems fresh.
      .header('Cache-Control', 'no-cache');
    if (noneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send();
    return reply.code(200).type('application/json').send(text);
  };

  /** A strong validator of the body: the same bytes, the same tag. */
  function entityTag(text: string): string {
    return `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
  }

  /** RFC 9110 If-None-Match: `*`, or a list of tags compared weakly (a `W/` prefix is ignored). */
  function noneMatch(header: string | undefined, etag: string): boolean {
    if (header === undefined) return false;
    if (header.trim() === '*') return true;
    return header.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag);
  }

  function assertMayRead(principal: Principal, topic: string): void {
    if (principal.kind === 'open') return;
    if (principal.kind !== 'token') throw authorizationError('HUB_ERR_UNAUTHORIZED', 'A bearer token is required to read subscriptions', new BearerChallenge());
    if (principal.grants?.allowsEvery('subscribe', [topic])) return;
    throw authorizationError('HUB_ERR_FORBIDDEN', 'The token does not allow reading these subscriptions', new BearerChallenge('insufficient_scope', 'The token does not grant this operation'));
  }

  app.get(SUBSCRIPTIONS_PATH, { errorHandler }, answer);
  app.get(`${SUBSCRIPTIONS_PATH}/*`, { errorHandler }, answer);
}
