import type { FastifyInstance } from 'fastify';
import { ERROR_CODES } from '../hub/errors.js';

/** One route as Fastify registered it (OPTIONS preflights and HEAD left out). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
}

/**
 * Records every route as it is registered, so the OpenAPI description can be checked against
 * the real route table (a test fails when one has a route the other lacks).
 */
export function trackRoutes(app: FastifyInstance): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'OPTIONS' && method !== 'HEAD') routes.push({ method, url: route.url });
    }
  });
  return routes;
}

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'The id (topic): 1–256 characters, no control characters; percent-encode it.',
  schema: { type: 'string', minLength: 1, maxLength: 256 },
};

const consumerNameParam = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'The consumer: 1–64 characters of A–Z, a–z, 0–9, `.`, `_`, `~`, `-`.',
  schema: { type: 'string', pattern: '^[A-Za-z0-9._~-]{1,64}$' },
};

const consumerQueryParam = {
  name: 'consumer',
  in: 'query',
  description: 'Stream as this acknowledged consumer: from the message after its last acknowledged one (created at the current end, or after Last-Event-ID, when new).',
  schema: { type: 'string', pattern: '^[A-Za-z0-9._~-]{1,64}$' },
};

const takeoverQueryParam = {
  name: 'takeover',
  in: 'query',
  description: 'With `consumer`: end a stream of this consumer the hub still holds open (one whose connection died without a FIN) instead of answering 409; it gets the comment `closed: a newer stream of this consumer took over`.',
  schema: { type: 'string', enum: ['1', 'true'] },
};

/** A required `application/x-www-form-urlencoded` body (Mercure's) with these fields. */
const formBody = (properties: Record<string, unknown>, required?: string[]) => ({
  required: true,
  content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties, ...(required ? { required } : {}) } } },
});

const eventStream = (description: string) => ({
  description,
  content: { 'text/event-stream': { schema: { type: 'string' } } },
});

/** The OpenAPI 3.1 description of the HTTP API, served at `/openapi.json`. */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'sse-relay',
      version: '0.1.0',
      description:
        'A Server-Sent Events message hub: the article API (/messages) and a Mercure endpoint on one store. Every GET operation also answers HEAD (same status and headers, no body; an event stream ends at once without subscribing).',
    },
    paths: {
      '/messages/subscribe/{id}': {
        get: {
          summary: 'Subscribe to an id (event stream)',
          description:
            'First event: `Subscribed to id {id}` with a `retry:` hint and the stream position as its `id:` (resume from it to miss nothing published after the stream opened); then every message published to the id, each with `id:`. Resume with `Last-Event-ID` (header wins) or `lastEventId`; `earliest` replays all retained. An unknown or pruned cursor yields a `gap` event and the `Replay-Gap: true` header.',
          parameters: [
            idParam,
            { name: 'lastEventId', in: 'query', schema: { type: 'string' }, description: 'Resume after this event id, or `earliest`.' },
            { name: 'Last-Event-ID', in: 'header', schema: { type: 'string' }, description: 'Resume after this event id (wins over the query). With `consumer`: only where a new consumer starts.' },
            { name: 'slow', in: 'query', schema: { type: 'string', enum: ['disconnect', 'skip', 'latest'] }, description: 'Slow-consumer policy past --max-backlog.' },
            consumerQueryParam,
            takeoverQueryParam,
          ],
          responses: {
            200: eventStream('The event stream (kept open; comment heartbeats).'),
            400: errorResponse('Invalid id, slow policy or consumer name.'),
            401: errorResponse('A token is required or invalid.'),
            403: errorResponse('The token does not grant subscribing to this id, or the consumer is another subject\'s.'),
            409: errorResponse('The consumer already has a stream open (without `takeover`).'),
            429: errorResponse('Too many connections.'),
          },
        },
      },
      '/messages': {
        post: {
          summary: 'Publish many messages at once, all or nothing',
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: { type: 'array', maxItems: 1000, items: { $ref: '#/components/schemas/BatchItem' } } },
              'application/x-ndjson': { schema: { type: 'string', description: 'One BatchItem JSON object per line.' } },
            },
          },
          responses: {
            200: {
              description: 'Every message committed by the store; their event ids in order.',
              content: { 'application/json': { schema: { type: 'object', properties: { ids: { type: 'array', items: { type: 'string' } } }, required: ['ids'] } } },
            },
            400: errorResponse('Not an array, empty, over 1000 messages, or an invalid item (named in the message): nothing is stored.'),
            401: errorResponse('A token is required or invalid.'),
            403: errorResponse('The token does not grant publishing to one of the ids.'),
            413: errorResponse('Body too large.'),
            415: errorResponse('Unsupported media type.'),
            503: errorResponse('Store unavailable or shutting down.'),
            507: errorResponse('Store out of space.'),
          },
        },
      },
      '/messages/{id}': {
        post: {
          summary: 'Publish a message to an id',
          parameters: [
            idParam,
            { name: 'message', in: 'query', schema: { type: 'string' }, description: 'The message (the article form), when there is no body.' },
            { name: 'event', in: 'query', schema: { type: 'string' }, description: 'Optional event type.' },
          ],
          requestBody: {
            required: false,
            content: {
              'text/plain': { schema: { type: 'string' } },
              'application/json': { schema: { $ref: '#/components/schemas/PublishBody' } },
              'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/PublishBody' } },
            },
          },
          responses: {
            200: {
              description: 'Committed by the store.',
              content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } } },
            },
            400: errorResponse('Invalid id, missing message or invalid event type.'),
            401: errorResponse('A token is required or invalid.'),
            403: errorResponse('The token does not grant publishing to this id.'),
            413: errorResponse('Body too large.'),
            415: errorResponse('Unsupported media type.'),
            503: errorResponse('Store unavailable or shutting down.'),
            507: errorResponse('Store out of space.'),
          },
        },
        get: {
          summary: 'What the hub holds for an id',
          parameters: [idParam],
          responses: {
            200: {
              description: 'Retained history and live subscribers; counts and ids cover only the messages the caller may receive (private updates need the grant).',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      id: { type: 'string' },
                      retained: { type: 'integer' },
                      firstId: { type: ['string', 'null'] },
                      lastId: { type: ['string', 'null'] },
                      subscribers: { type: 'integer' },
                    },
                  },
                },
              },
            },
            400: errorResponse('Invalid id.'),
          },
        },
      },
      '/messages/{id}/consumers': {
        get: {
          summary: "The caller's acknowledged consumers of an id",
          parameters: [idParam],
          responses: {
            200: {
              description: 'Every consumer of the id the caller owns (all of them on a hub without subscriber keys), by name.',
              content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'string' }, consumers: { type: 'array', items: { $ref: '#/components/schemas/Consumer' } } }, required: ['id', 'consumers'] } } },
            },
            400: errorResponse('Invalid id.'),
            401: errorResponse('A token is required or invalid.'),
            403: errorResponse('The token does not grant subscribing to this id, or has no subject.'),
          },
        },
      },
      '/messages/{id}/consumers/{name}': {
        get: {
          summary: 'One acknowledged consumer',
          parameters: [idParam, consumerNameParam],
          responses: {
            200: { description: 'The consumer.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Consumer' } } } },
            400: errorResponse('Invalid id or consumer name.'),
            401: errorResponse('A token is required or invalid.'),
            403: errorResponse('The consumer belongs to another subject.'),
            404: errorResponse('No such consumer (never created, or expired).'),
          },
        },
      },
      '/messages/{id}/consumers/{name}/ack': {
        post: {
          summary: 'Acknowledge every message of a consumer up to an event id',
          parameters: [idParam, consumerNameParam],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'string', description: 'An event id delivered to this consumer.' } }, required: ['id'] } } },
          },
          responses: {
            200: { description: 'Acknowledged (or already: an id at or behind the acknowledgement changes nothing).', content: { 'application/json': { schema: { $ref: '#/components/schemas/Consumer' } } } },
            400: errorResponse('No id, or an id that is not pending for this consumer (HUB_ERR_ACK_INVALID).'),
            401: errorResponse('A token is required or invalid.'),
            403: errorResponse('The consumer belongs to another subject.'),
            404: errorResponse('No such consumer.'),
          },
        },
      },
      '/messages/sse/{id}': {
        get: { summary: "The article's demo stream: `<time> Looping` every --loop-interval", parameters: [idParam], responses: { 200: eventStream('Demo stream.') } },
      },
      '/.well-known/mercure': {
        get: {
          summary: 'Mercure subscription (event stream)',
          description: 'Selectors: `topic` (exact or RFC 6570 template, legacy), `match` / `match_urlpattern` (current), `*`. Resume: `Last-Event-ID` header, `last_event_id` or `lastEventID` query, `earliest`.',
          parameters: [
            { name: 'topic', in: 'query', schema: { type: 'array', items: { type: 'string' } }, style: 'form', explode: true },
            { name: 'match', in: 'query', schema: { type: 'array', items: { type: 'string' } }, style: 'form', explode: true },
            { name: 'match_urlpattern', in: 'query', schema: { type: 'array', items: { type: 'string' } }, style: 'form', explode: true },
            { name: 'last_event_id', in: 'query', schema: { type: 'string' } },
            { name: 'lastEventID', in: 'query', schema: { type: 'string' } },
          ],
          responses: { 200: eventStream('Updates matching the selectors.'), 400: { description: 'Invalid selectors, or more patterns than --max-subscription-patterns.' }, 401: { description: 'Invalid token.' }, 403: { description: 'Not allowed.' } },
        },
        // OpenAPI 3.2's `query` operation (RFC 10008); 3.1 tools ignore the unknown key.
        query: {
          summary: 'Mercure subscription with the selectors in the body (event stream)',
          description: 'The parameters of GET, as an application/x-www-form-urlencoded body, joined with those of the query (last_event_id: the query wins).',
          requestBody: formBody({
            topic: { type: 'array', items: { type: 'string' } },
            match: { type: 'array', items: { type: 'string' } },
            match_urlpattern: { type: 'array', items: { type: 'string' } },
            last_event_id: { type: 'string' },
          }),
          responses: { 200: eventStream('Updates matching the selectors.'), 400: { description: 'Invalid selectors, or no Content-Type.' }, 401: { description: 'Invalid token.' }, 403: { description: 'Not allowed.' } },
        },
        post: {
          summary: 'Mercure publish',
          requestBody: formBody(
            {
              topic: { type: 'array', items: { type: 'string' } },
              data: { type: 'string' },
              private: { type: 'string' },
              // Digits only and `earliest` are the hub's own cursors (HUB_ERR_EVENT_ID_RESERVED).
              id: { type: 'string', not: { pattern: '^([0-9]+|earliest)$' } },
              type: { type: 'string' },
              retry: { type: 'string', pattern: '^[0-9]+$' },
            },
            ['topic'],
          ),
          responses: {
            200: { description: 'The event id.', content: { 'text/plain': { schema: { type: 'string' } } } },
            400: { description: 'Invalid update.' },
            401: { description: 'Invalid token.' },
            403: { description: 'Not allowed.' },
            413: { description: 'Too large.' },
          },
        },
      },
      '/.well-known/oauth-protected-resource/.well-known/mercure': {
        get: {
          summary: 'Mercure protected resource metadata (RFC 9728)',
          responses: { 200: { description: 'resource, authorization_servers, authorization_details_types_supported, bearer_methods_supported, mercure_cookie, mercure_subscriptions.', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
      '/healthz': { get: { summary: 'Liveness', responses: { 200: { description: 'The process serves HTTP.' } } } },
      '/readyz': { get: { summary: 'Readiness', responses: { 200: { description: 'Ready.' }, 503: errorResponse('Store unreachable or shutting down.') } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'Exposition text.', content: { 'text/plain': { schema: { type: 'string' } } } }, 401: errorResponse('Token required.') } } },
      '/stats': { get: { summary: "The console's live figures", responses: { 200: { description: "Subscribers, published and delivered counts, store, readiness, and the hub's position (`lastEventId`: its last event id, or `earliest`)." } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1.' } } } },
      '/.well-known/sse-relay/probe': {
        get: {
          summary: 'Timed probe events for `sse-relay doctor` (proxy buffering diagnosis)',
          responses: { 200: eventStream('`count` events `interval` ms apart, each with the server time; with `idle=1`, then `probe-idle`, heartbeats only for one heartbeat interval and a second, and `probe-end`.') },
        },
      },
      '/': { get: { summary: 'The web console', responses: { 200: { description: 'HTML page.' } } } },
      '/console/console.js': { get: { summary: 'The web console (script)', responses: { 200: { description: 'JavaScript.' } } } },
      '/console/console.css': { get: { summary: 'The web console (styles)', responses: { 200: { description: 'CSS.' } } } },
      '/console/console.js.map': { get: { summary: 'The web console (source map of the script)', responses: { 200: { description: 'JSON source map.' } } } },
      '/console/favicon.svg': { get: { summary: 'The web console (icon)', responses: { 200: { description: 'SVG image.' } } } },
      '/favicon.ico': { get: { summary: "The hub's icon, for browsers that ask for it by this name", responses: { 200: { description: 'SVG image.' } } } },
    },
    components: {
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: { code: { type: 'string', enum: Object.keys(ERROR_CODES) }, message: { type: 'string' } },
              required: ['code', 'message'],
            },
          },
          required: ['error'],
        },
        Consumer: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            ackedId: { type: 'string', description: 'Every message up to this event id is acknowledged (`earliest`: none).' },
            pending: { type: 'integer', description: 'Messages held for it, unacknowledged.' },
            connected: { type: 'boolean', description: 'A stream of this hub process is open for it.' },
            lastSeen: { type: 'string', format: 'date-time' },
            lost: {
              type: ['object', 'null'],
              description: 'Released unacknowledged past --consumer-max-pending since its last acknowledgement.',
              properties: { firstId: { type: 'string' }, lastId: { type: 'string' }, count: { type: 'integer' } },
            },
          },
          required: ['name', 'ackedId', 'pending', 'connected', 'lastSeen', 'lost'],
        },
        PublishBody: {
          type: 'object',
          properties: { message: { type: 'string' }, event: { type: 'string', description: 'Optional event type.' } },
          required: ['message'],
        },
        BatchItem: {
          type: 'object',
          properties: {
            id: { type: 'string', description: 'The id (topic) to publish to.' },
            message: { type: 'string' },
            event: { type: 'string', description: 'Optional event type.' },
          },
          required: ['id', 'message'],
        },
      },
    },
  };
}

/** Serves the description at `/openapi.json`. */
export function registerOpenApiRoute(app: FastifyInstance): void {
  const body = JSON.stringify(openApiDocument());
  app.get('/openapi.json', async (_request, reply) => reply.type('application/json; charset=utf-8').send(body));
}
