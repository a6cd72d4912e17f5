import { messagesUrl, resolveHeaders, type HeadersOption } from './endpoints.js';
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
  const url = messagesUrl(options.url, 'publish', options.id);
  const body: { message: string; event?: string } = { message: options.message };
  if (options.event !== undefined) body.event = options.event;
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

  let answer: unknown;
  try {
    answer = await response.json();
  } catch (cause) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new RelayClientError('CLIENT_ERR_PROTOCOL', 'The hub accepted the message but its answer is not JSON', {
      status: response.status,
      cause,
    });
  }
  const id = (answer as { id?: unknown } | null)?.id;
  if (typeof id !== 'string') {
    throw new RelayClientError('CLIENT_ERR_PROTOCOL', 'The hub accepted the message but its answer has no id', {
      status: response.status,
    });
  }
  return { id };
}
