import type { FastifyInstance } from 'fastify';
import { RelayError } from '../../hub/errors.js';
import { assertValidDraft, type MessageDraft } from '../../hub/message.js';
import type { AdapterContext } from '../../http/context.js';
import { MAX_APPEND_ALL } from '../../store/store.js';
import { assertPublishableEventType, assertPublishableId } from './publish.js';

/** The answer to an accepted batch: the event ids, in the order of the messages. */
export interface PublishBatchReply {
  ids: string[];
}

/** One message of a batch, as the client sends it (`id` is the topic, as in `/messages/:id`). */
interface BatchItem {
  id?: unknown;
  message?: unknown;
  event?: unknown;
}

/**
 * `POST /messages`: publishes many messages in one request, all or nothing. The body is a JSON
 * array of `{"id": "<topic>", "message": "...", "event": "type"}` or the same objects as NDJSON
 * (`application/x-ndjson`, one per line). Answers `{"ids": [...]}` in order once every message
 * is committed; a bad item refuses the whole batch (400 naming the item), and nothing is
 * stored. With a publisher key, the token must grant `publish` on every id.
 */
export function registerPublishBatchRoute(app: FastifyInstance, context: AdapterContext): void {
  const { hub, authorizer } = context;
  // NDJSON is text; lines are split here, after the body limit applied.
  app.addContentTypeParser(['application/x-ndjson', 'application/ndjson'], { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseNdjson(body as string));
    } catch (error) {
      done(error as Error);
    }
  });
  app.post<{ Body: unknown }>('/messages', async (request): Promise<PublishBatchReply> => {
    const principal = await authorizer.authenticate('publisher', request.headers);
    const drafts = draftsOf(request.body);
    authorizer.assertMayPublish(principal, [...new Set(drafts.flatMap((d) => d.topics))]);
    const messages = await hub.publishAll(drafts);
    return { ids: messages.map((m) => m.id) };
  });
}

function parseNdjson(body: string): unknown[] {
  const items: unknown[] = [];
  body.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    try {
      items.push(JSON.parse(line));
    } catch {
      throw new RelayError('HUB_ERR_BATCH_INVALID', `Line ${index + 1} of the NDJSON body is not valid JSON`);
    }
  });
  return items;
}

function draftsOf(body: unknown): MessageDraft[] {
  if (!Array.isArray(body)) {
    throw new RelayError('HUB_ERR_BATCH_INVALID', 'Send a JSON array (or NDJSON lines) of {"id": "<id>", "message": "...", "event": "type"}');
  }
  if (body.length === 0) throw new RelayError('HUB_ERR_BATCH_INVALID', 'The batch is empty');
  if (body.length > MAX_APPEND_ALL) throw new RelayError('HUB_ERR_BATCH_INVALID', `At most ${MAX_APPEND_ALL} messages can be published at once (got ${body.length})`);
  return body.map((raw: unknown, index) => {
    const where = `message ${index + 1} of the batch`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new RelayError('HUB_ERR_BATCH_INVALID', `${where} is not an object`);
    const { id, message, event } = raw as BatchItem;
    if (typeof id !== 'string') throw new RelayError('HUB_ERR_BATCH_INVALID', `${where} has no "id" (the topic) string`);
    if (typeof message !== 'string' || message === '') throw new RelayError('HUB_ERR_BATCH_INVALID', `${where} has no "message" string`);
    if (event !== undefined && typeof event !== 'string') throw new RelayError('HUB_ERR_BATCH_INVALID', `${where}: "event" must be a string`);
    const draft: MessageDraft = { topics: [id], data: message, type: event === '' ? undefined : event };
    try {
      assertPublishableId(id);
      assertPublishableEventType(draft.type);
      assertValidDraft(draft);
    } catch (error) {
      throw new RelayError('HUB_ERR_BATCH_INVALID', `${where}: ${(error as Error).message}`);
    }
    return draft;
  });
}
