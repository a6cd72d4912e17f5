/**
 * Every error the hub can report, in one table. Each code is stable (clients may match on it),
 * carries the HTTP status the error handler answers with, and a default message.
 * `test/hub/errors.test.ts` keeps codes unique and documented in the README.
 */
export const ERROR_CODES = {
  HUB_ERR_TOPIC_INVALID: { status: 400, message: 'Invalid id' },
  HUB_ERR_MESSAGE_MISSING: { status: 400, message: 'No message given' },
  HUB_ERR_MESSAGE_INVALID: { status: 400, message: 'Invalid message' },
  HUB_ERR_EVENT_TYPE_INVALID: { status: 400, message: 'Invalid event type' },
  HUB_ERR_EVENT_ID_INVALID: { status: 400, message: 'Invalid event id' },
  HUB_ERR_EVENT_ID_RESERVED: { status: 400, message: 'The event id has the form of the ids the hub issues (digits only; with --redis-shards also v<digits>. then anything) or is "earliest"' },
  HUB_ERR_BAD_REQUEST: { status: 400, message: 'Bad request' },
  HUB_ERR_BATCH_INVALID: { status: 400, message: 'Invalid batch of messages' },
  HUB_ERR_TEXT_ENCODING_INVALID: { status: 400, message: 'Text is not valid in its character encoding' },
  HUB_ERR_TOPIC_RESERVED: { status: 400, message: 'The topic is reserved by the hub' },
  HUB_ERR_MATCHER_INVALID: { status: 400, message: 'Invalid topic matcher' },
  HUB_ERR_MATCHER_LIMIT: { status: 400, message: 'Too many URL patterns or URI templates in one subscription' },
  HUB_ERR_SLOW_POLICY_INVALID: { status: 400, message: 'Invalid slow-consumer policy: ?slow= must be disconnect, skip or latest' },
  HUB_ERR_CONSUMER_INVALID: { status: 400, message: 'Invalid consumer name: 1 to 64 characters of A-Z, a-z, 0-9, ".", "_", "~" and "-"' },
  HUB_ERR_ACK_INVALID: { status: 400, message: 'Invalid acknowledgement: send {"id": "<event id>"} with the id of a message delivered to this consumer' },
  HUB_ERR_UNAUTHORIZED: { status: 401, message: 'Authentication required' },
  HUB_ERR_TOKEN_INVALID: { status: 401, message: 'Invalid access token' },
  HUB_ERR_FORBIDDEN: { status: 403, message: 'Not allowed' },
  HUB_ERR_ORIGIN_NOT_ALLOWED: { status: 403, message: 'A request authenticated by a token cookie must come from the hub\'s own origin or one in --cors-origins' },
  HUB_ERR_CONSUMER_FORBIDDEN: { status: 403, message: 'With subscriber keys, a consumer belongs to the subject (sub) of the token that created it; this token has another subject or none' },
  HUB_ERR_NOT_FOUND: { status: 404, message: 'Not found' },
  HUB_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  HUB_ERR_CONSUMER_NOT_FOUND: { status: 404, message: 'No such consumer on this id (never created, or expired after --consumer-ttl)' },
  HUB_ERR_REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time' },
  HUB_ERR_CONSUMER_BUSY: { status: 409, message: 'The consumer is already connected: one stream per consumer at a time' },
  HUB_ERR_BODY_TOO_LARGE: { status: 413, message: 'Request body is too large' },
  HUB_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported media type' },
  HUB_ERR_TOO_MANY_CONNECTIONS: { status: 429, message: 'Too many connections; retry later' },
  HUB_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'Request headers are too large' },
  HUB_ERR_CONSUMER_UNSUPPORTED: { status: 501, message: 'Acknowledged consumers (?consumer=) are not available with --redis-shards above 1' },
  HUB_ERR_SHUTTING_DOWN: { status: 503, message: 'The hub is shutting down' },
  HUB_ERR_SUBSCRIBER_BEHIND: { status: 503, message: 'More messages arrived while the stream opened than the hub holds for one subscriber; reconnect with Last-Event-ID' },
  HUB_ERR_STORE_UNAVAILABLE: { status: 503, message: 'The message store is unavailable' },
  HUB_ERR_STORE_FULL: { status: 507, message: 'The message store is out of space' },
  HUB_ERR_STORE_OPEN: { status: 500, message: 'The message store could not be opened' },
  HUB_ERR_CONFIG_INVALID: { status: 500, message: 'Invalid configuration' },
  HUB_ERR_INTERNAL: { status: 500, message: 'Internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable code and an HTTP status; the one error type thrown across the hub. */
export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code].message, options);
    this.name = 'RelayError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}

export function isRelayError(value: unknown): value is RelayError {
  return value instanceof RelayError;
}
