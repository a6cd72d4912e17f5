import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { RelayError } from '../../hub/errors.js';
import { assertValidTopic, type Message } from '../../hub/message.js';
import type { Principal } from '../../auth/authorizer.js';
import type { AdapterContext } from '../../http/context.js';
import { MERCURE_PATH } from '../mercure/discovery.js';
import { isReservedTopic } from '../mercure/publish.js';

/** What a publish request carries once parsed (path parameter, query, body). */
export interface PublishRequest {
  Params: { id: string };
  Querystring: { readonly message?: unknown; readonly event?: unknown; readonly key?: unknown };
  Body: unknown;
}

/** The answer to an accepted publish. */
export interface PublishReply {
  /** The event id the message carries on every stream (`id:` field). */
  id: string;
}

/**
 * `POST /messages/:id`: publishes a message to a topic. The message comes as a `text/plain`
 * body, a JSON body `{"message": "...", "event": "type", "key": "k"}`, a form field `message`
 * (with optional `event` and `key`), or, as in the article, `?message=`. A body wins over the
 * query. `key` is the conflation key of subscribers with `?slow=latest`.
 * Answers `{"id": "<event id>"}` once the store committed the message. With a publisher key,
 * the token must grant `publish` on the id (401 without a valid token, 403 without the grant).
 */
export function registerPublishRoute(app: FastifyInstance, context: AdapterContext): void {
  app.post<PublishRequest>('/messages/:id', async (request) => publishToId(context, request.headers, request.params.id, request.body, request.query));
}

/**
 * The rules of `POST /messages/:id`, whichever HTTP path carries the request (Fastify's route,
 * or the lean paths of `src/http/lean-publish.ts` and `src/http/raw-publish.ts`): authenticate, check the id, authorize,
 * take the message from the parsed body or the query, publish. `topic` is the decoded path
 * parameter. Throws a RelayError for every refusal, synchronously when it is decided without
 * waiting, as a rejection otherwise.
 *
 * The reply comes without a promise when nothing needs waiting for (no token to verify, a store
 * that appends synchronously): on the memory store of an open hub, a publish then costs no
 * promise turn at all, which was about a third of its instructions on the raw path.
 */
export function publishToId(
  context: Pick<AdapterContext, 'hub' | 'authorizer'>,
  headers: IncomingHttpHeaders,
  topic: string,
  body: unknown,
  query: PublishRequest['Querystring'],
): PublishReply | Promise<PublishReply> {
  const principal = context.authorizer.authenticateNow('publisher', headers);
  if (principal instanceof Promise) return principal.then((verified) => publishAs(context, verified, topic, body, query));
  return publishAs(context, principal, topic, body, query);
}

function publishAs(
  context: Pick<AdapterContext, 'hub' | 'authorizer'>,
  principal: Principal,
  topic: string,
  body: unknown,
  query: PublishRequest['Querystring'],
): PublishReply | Promise<PublishReply> {
  assertPublishableId(topic);
  context.authorizer.assertMayPublish(principal, [topic]);
  const { message, event, key } = extractMessage(body, query);
  assertPublishableEventType(event);
  const accepted = context.hub.publishNow({ topics: [topic], data: message, type: event, key });
  return accepted instanceof Promise ? accepted.then(replyOf) : replyOf(accepted);
}

function replyOf(message: Message): PublishReply {
  return { id: message.id };
}

/**
 * Throws unless `topic` may be published to on this API (single or batch): a valid id outside
 * the hub's Mercure namespace. The ids are Mercure topics: the namespace and the `mercure` event
 * type are closed here too, or this API would be a side door to forge subscription events.
 */
export function assertPublishableId(topic: string): void {
  assertValidTopic(topic);
  if (isReservedTopic(topic)) throw new RelayError('HUB_ERR_TOPIC_RESERVED', `Ids under ${MERCURE_PATH} are reserved for the hub`);
}

/** Throws for the `mercure` event type, which only the hub's own subscription events carry. */
export function assertPublishableEventType(event: string | undefined): void {
  if (event === 'mercure') throw new RelayError('HUB_ERR_EVENT_TYPE_INVALID', 'The "mercure" event type is reserved for the hub');
}

function extractMessage(body: unknown, query: PublishRequest['Querystring']): { message: string; event: string | undefined; key: string | undefined } {
  let message: unknown;
  let event: unknown;
  let key: unknown;
  if (typeof body === 'string') {
    message = body;
  } else if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    ({ message, event, key } = body as { message?: unknown; event?: unknown; key?: unknown });
  }
  if (key === undefined) key = query.key;
  if (message === undefined) message = query.message;
  if (event === undefined) event = query.event;

  if (message === undefined || message === '') {
    throw new RelayError('HUB_ERR_MESSAGE_MISSING', 'No message given: send a text/plain body, JSON {"message": "..."}, a form field "message" or ?message=');
  }
  if (typeof message !== 'string') throw new RelayError('HUB_ERR_MESSAGE_INVALID', 'The message must be a single string');
  if (event !== undefined && typeof event !== 'string') {
    throw new RelayError('HUB_ERR_EVENT_TYPE_INVALID', 'The event type must be a single string');
  }
  if (key !== undefined && typeof key !== 'string') throw new RelayError('HUB_ERR_MESSAGE_INVALID', 'The key must be a single string');
  return { message, event: event === '' ? undefined : (event as string | undefined), key: key === '' ? undefined : (key as string | undefined) };
}
