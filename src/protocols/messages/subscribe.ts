import type { FastifyInstance } from 'fastify';
import { assertValidTopic } from '../../hub/message.js';
import type { AdapterContext } from '../../http/context.js';
import { encodeEvent } from '../../sse/encode.js';
import { SseStream } from '../../sse/stream.js';

/** Response header set when the requested cursor could not be resumed exactly. */
export const GAP_HEADER = 'Replay-Gap';

/** Longest accepted Last-Event-ID; longer ones are treated as unknown (and reported as a gap). */
const MAX_LAST_EVENT_ID_LENGTH = 1024;

interface SubscribeRequest {
  Params: { id: string };
  Querystring: { lastEventId?: string | string[] };
}

/**
 * `GET /messages/subscribe/:id`: the article's subscription, as a spec-exact event stream.
 * First event: `Subscribed to id <id>` (no `id:` field, so it does not move the client's
 * cursor) with the `retry:` hint; then, when the client resumes (`Last-Event-ID` header, or
 * `?lastEventId=`, header wins; `earliest` for everything retained), a `gap` event if its
 * cursor could not be resumed exactly, the retained history, and the live messages.
 * With a subscriber key, the token must grant `subscribe` on the id unless `--anonymous`.
 */
export function registerSubscribeRoute(app: FastifyInstance, context: AdapterContext): void {
  const { hub, options, heartbeats, authorizer, tokenExpiry } = context;
  app.get<SubscribeRequest>('/messages/subscribe/:id', async (request, reply) => {
    const principal = await authorizer.authenticate('subscriber', request.headers);
    const topic = request.params.id;
    assertValidTopic(topic);
    authorizer.assertMaySubscribe(principal, topic);
    const lastEventId = pickLastEventId(request.headers['last-event-id'], request.query.lastEventId);

    let stream: SseStream | undefined;
    const sink = {
      deliver: (message: Parameters<SseStream['deliver']>[0], frame: Buffer) => stream!.deliver(message, frame),
      get closed() {
        return stream?.closed ?? false;
      },
      close: (reason: 'slow-consumer' | 'shutdown') => stream?.close(reason),
    };
    // Register before resolving the cursor and reading history: whatever is committed from now
    // on is held for this subscriber, so the replay-to-live hand-over has no gap.
    // Private updates (published through Mercure) only reach tokens granted all their topics.
    const subscription = hub.open({ api: 'messages', topics: [topic], accepts: (message) => authorizer.mayReceive(principal, message) }, sink);
    let cursor;
    try {
      cursor = await hub.resolveCursor(lastEventId, [topic]);
    } catch (error) {
      hub.unsubscribe(subscription);
      throw error;
    }

    reply.hijack();
    stream = new SseStream(reply.raw, {
      maxBacklogBytes: options.maxBacklog,
      headers: cursor?.gap ? { [GAP_HEADER]: 'true' } : undefined,
    });
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
    stream.send(Buffer.from(encodeEvent({ data: `Subscribed to id ${topic}`, retry: options.retry })));
    if (cursor?.gap) {
      stream.send(
        Buffer.from(
          encodeEvent({
            event: 'gap',
            data: JSON.stringify({
              lastEventId,
              message: 'The requested event id is unknown or no longer retained; replaying from the oldest retained message. Messages may have been missed.',
            }),
          }),
        ),
      );
    }
    await hub.resume(subscription, cursor);
  });
}

function pickLastEventId(header: string | string[] | undefined, query: string | string[] | undefined): string | undefined {
  const raw = header ?? query;
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed.length === 0) return undefined;
  // Garbage cursors are not an error: the client gets everything retained and a gap signal.
  // No store issues ids with NUL, so this one resolves as unknown.
  if (trimmed.length > MAX_LAST_EVENT_ID_LENGTH) return '\u0000too-long';
  return trimmed;
}

