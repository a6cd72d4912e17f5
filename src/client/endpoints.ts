import { RelayClientError } from './errors.js';

/**
 * The hub's `/messages` routes, resolved against a base URL. The base may carry a path prefix
 * (`https://example.com/relay`), with or without a trailing slash; the id is percent-encoded,
 * so any id the hub accepts (`/`, `?`, `#`, spaces, emoji) reaches it unchanged.
 */
/** `POST /messages` (batches) under the hub's base URL. */
export function batchUrl(base: string): URL {
  try {
    return new URL('messages', base.endsWith('/') ? base : `${base}/`);
  } catch (cause) {
    throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', `Invalid hub URL: ${JSON.stringify(base)}`, { cause });
  }
}

export function messagesUrl(base: string, route: 'subscribe' | 'publish', id: string | undefined): URL {
  if (typeof id !== 'string' || id.length === 0) {
    throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'The id must be a non-empty string');
  }
  let encoded: string;
  try {
    encoded = encodeURIComponent(id);
  } catch (cause) {
    throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'The id is not valid Unicode (lone surrogate)', { cause });
  }
  const path = route === 'subscribe' ? `messages/subscribe/${encoded}` : `messages/${encoded}`;
  try {
    return new URL(path, base.endsWith('/') ? base : `${base}/`);
  } catch (cause) {
    throw new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', `Invalid hub URL: ${JSON.stringify(base)}`, { cause });
  }
}

/** `POST /messages/:id/consumers/:name/ack` under the hub's base URL. */
export function consumerAckUrl(base: string, id: string, consumer: string): URL {
  const topic = messagesUrl(base, 'publish', id);
  topic.pathname += `/consumers/${encodeURIComponent(consumer)}/ack`;
  return topic;
}

/** Headers given as an object or as a function called for every request (fresh tokens). */
export type HeadersOption = Record<string, string> | (() => Record<string, string>);

export function resolveHeaders(option: HeadersOption | undefined): Record<string, string> {
  if (option === undefined) return {};
  return typeof option === 'function' ? option() : option;
}
