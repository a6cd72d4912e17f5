import { batchUrl, messagesUrl, resolveHeaders, type HeadersOption } from './endpoints.js';
import { errorFromResponse, RelayClientError, unreachableError } from './errors.js';

/** Options of {@link publish}. */
export interface PublishOptions {
  /** Base URL of the hub, e.g. `http://127.0.0.1:3000` (a path prefix is kept). */
  url: string;
  /** The id (topic) to publish to; percent-encoded into the URL. */
  id: string;
  /** The message; line breaks are kept (subscribers receive them as LF). */
  message: string;
  /** Event type (`event:` field); omitted means `message`. */
  event?: string;
  /** Extra request headers, or a function returning them. */
  headers?: HeadersOption;
  /** Aborts the request; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The `fetch` to use. Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** The hub's answer to an accepted message. */
export interface PublishResult {
  /** The event id the message carries on every stream. */
  id: string;
}

/**
 * Posts a message to `POST /messages/:id` as JSON. Resolves once the hub has committed it.
 * Rejects with a {@link RelayClientError}: the hub's `HUB_ERR_*` code and status for a refusal,
 * `CLIENT_ERR_UNREACHABLE` when no answer came, `CLIENT_ERR_PROTOCOL` for an unreadable answer.
 */
export async function publish(options: PublishOptions): Promise<PublishResult> {
  const body: { message: string; event?: string } = { message: options.message };
  if (options.event !== undefined) body.event = options.event;
  const answer = await postJson(options, messagesUrl(options.url, 'publish', options.id), body);
  const id = (answer.body as { id?: unknown } | null)?.id;
  if (typeof id !== 'string') {
    throw new RelayClientError('CLIENT_ERR_PROTOCOL', 'The hub accepted the message but its answer has no id', { status: answer.status });
  }
  return { id };
}

/** One message of {@link publishMany}. */
export interface BatchMessage {
  /** The id (topic) to publish to. */
  id: string;
  message: string;
  /** Event type (`event:` field); omitted means `message`. */
  event?: string;
}

/** The most messages one {@link publishMany} call (one `POST /messages`) may carry. */
export const MAX_BATCH_MESSAGES = 1000;

/** Options of {@link publishMany}: those of {@link publish} without the single message. */
export interface PublishManyOptions extends Omit<PublishOptions, 'id' | 'message' | 'event'> {
  /** Up to {@link MAX_BATCH_MESSAGES} messages, published all or nothing, in this order. */
  messages: readonly BatchMessage[];
}

/**
 * Posts many messages in one request (`POST /messages`), all or nothing: resolves with their
 * event ids in order once every one is committed, or rejects (as {@link publish} does) and
 * none was published.
 */
export async function publishMany(options: PublishManyOptions): Promise<PublishResult[]> {
  const body = options.messages.map(({ id, message, event }) => (event === undefined ? { id, message } : { id, message, event }));
  const answer = await postJson(options, batchUrl(options.url), body);
  const ids = (answer.body as { ids?: unknown } | null)?.ids;
  if (!Array.isArray(ids) || ids.length !== body.length || !ids.every((id) => typeof id === 'string')) {
    throw new RelayClientError('CLIENT_ERR_PROTOCOL', 'The hub accepted the batch but its answer has no ids for every message', { status: answer.status });
  }
  return ids.map((id: string) => ({ id }));
}

/** POSTs `body` as JSON and returns the parsed answer of a 2xx; maps every failure to a RelayClientError. */
export async function postJson(options: Omit<PublishOptions, 'id' | 'message'>, url: URL, body: unknown): Promise<{ status: number; body: unknown }> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  let response: Response;
  try {
    response = await fetchImpl(url, {
      method: 'POST',
      headers: { ...resolveHeaders(options.headers), 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      signal: options.signal,
    });
  } catch (cause) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw unreachableError(options.url, cause);
  }
  if (!response.ok) throw await errorFromResponse(response);
  try {
    return { status: response.status, body: await response.json() };
  } catch (cause) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new RelayClientError('CLIENT_ERR_PROTOCOL', 'The hub accepted the request but its answer is not JSON', { status: response.status, cause });
  }
}
