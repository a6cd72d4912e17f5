import type { FastifyInstance } from 'fastify';
import { RelayError } from '../../hub/errors.js';
import { assertValidTopic, unprintableIn } from '../../hub/message.js';
import { WILDCARD } from '../../hub/topic-matcher.js';
import type { AdapterContext } from '../../http/context.js';
import { MERCURE_PATH } from './discovery.js';
import type { MercureErrorHandler } from './errors.js';

/** Most `topic` fields one update may carry (Mercure's limit too). */
export const MAX_PUBLISH_TOPICS = 1000;

const FORM = 'application/x-www-form-urlencoded';

/**
 * True when `topic` addresses the hub's own namespace (`/.well-known/mercure` and below, where
 * hub-generated events such as subscription events live), read as a URL or a path: after
 * dot-segment removal and percent-decoding, repeated until stable so `%252e` tricks do not
 * pass, and compared without regard to case.
 */
export function isReservedTopic(topic: string): boolean {
  // Runs on every publish, and a URL parse costs microseconds: without a `%`, nothing can
  // decode into the namespace's letters, so a topic that does not spell them is not in it.
  if (!topic.includes('%') && !topic.toLowerCase().includes('well-known')) return false;
  let path = topic;
  for (let round = 0; round < 4; round++) {
    let resolved: string;
    try {
      resolved = new URL(path, 'http://hub.invalid/').pathname;
    } catch {
      return false;
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(resolved);
    } catch {
      decoded = resolved;
    }
    const lower = decoded.toLowerCase();
    if (lower === MERCURE_PATH || lower.startsWith(`${MERCURE_PATH}/`)) return true;
    if (decoded === path) return false;
    path = decoded;
  }
  return false;
}

function fields(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/**
 * `POST /.well-known/mercure`: publishes an update from a form (`topic` repeatable, the first is
 * canonical; `data`, `private`, `id`, `type`, `retry`). Answers 200 with the event id as text
 * once the store committed it. The update reaches subscribers of every one of its topics, on
 * both APIs.
 */
export function registerMercurePublishRoute(app: FastifyInstance, context: AdapterContext, errorHandler: MercureErrorHandler): void {
  const { hub, authorizer } = context;
  app.post(MERCURE_PATH, { errorHandler }, async (request, reply) => {
    const principal = await authorizer.authenticate('publisher', request.headers);
    const contentType = String(request.headers['content-type'] ?? '').toLowerCase();
    if (!contentType.startsWith(FORM)) throw new RelayError('HUB_ERR_UNSUPPORTED_MEDIA_TYPE', `Updates must be sent as ${FORM}`);
    const body = (request.body ?? {}) as Record<string, unknown>;
    const field = (name: string): string | undefined => (Object.hasOwn(body, name) ? fields(body[name])[0] : undefined);

    const topics = Object.hasOwn(body, 'topic') ? fields(body.topic) : [];
    if (topics.length === 0) throw new RelayError('HUB_ERR_TOPIC_INVALID', 'At least one topic field is required');
    if (topics.length > MAX_PUBLISH_TOPICS) throw new RelayError('HUB_ERR_TOPIC_INVALID', `An update may have at most ${MAX_PUBLISH_TOPICS} topics`);
    for (const topic of topics) {
      assertValidTopic(topic);
      if (topic === WILDCARD) throw new RelayError('HUB_ERR_TOPIC_RESERVED', '"*" is the wildcard selector, not a topic');
      if (isReservedTopic(topic)) throw new RelayError('HUB_ERR_TOPIC_RESERVED', `Topics under ${MERCURE_PATH} are reserved for the hub`);
    }
    authorizer.assertMayPublish(principal, topics);

    const id = field('id');
    if (id !== undefined) {
      if (id.length === 0) throw new RelayError('HUB_ERR_EVENT_ID_INVALID', 'The id must not be empty');
      if (id.startsWith('#')) throw new RelayError('HUB_ERR_EVENT_ID_INVALID', 'Ids starting with "#" are reserved');
      const unprintable = unprintableIn(id);
      if (unprintable !== undefined) throw new RelayError('HUB_ERR_EVENT_ID_INVALID', `The id must not contain ${unprintable}`);
    }
    const type = field('type') || undefined;
    if (type === 'mercure') throw new RelayError('HUB_ERR_EVENT_TYPE_INVALID', 'The "mercure" event type is reserved for the hub');
    const retryText = field('retry') || undefined;
    if (retryText !== undefined && !/^\d{1,15}$/.test(retryText)) throw new RelayError('HUB_ERR_MESSAGE_INVALID', 'retry must be a number of milliseconds (digits only)');

    const message = await hub.publish({
      topics,
      data: field('data') ?? '',
      private: Object.hasOwn(body, 'private') || undefined,
      id,
      type,
      retry: retryText === undefined ? undefined : Number(retryText),
      // The conflation key for subscribers with ?slow=latest (live only, see Message.key).
      key: field('key') || undefined,
    });
    return reply.code(200).type('text/plain; charset=utf-8').send(message.id);
  });
}
