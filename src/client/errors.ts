/**
 * Every failure the client SDK reports, in one table. When the hub answers with its JSON error
 * (`{"error": {"code": "HUB_ERR_...", "message": "..."}}`) the error carries the hub's code and
 * message unchanged; the `CLIENT_ERR_*` codes below are for what goes wrong on this side.
 */
export const CLIENT_ERROR_CODES = {
  /** The options given to `subscribe()` / `publish()` are unusable (bad URL, empty id). */
  CLIENT_ERR_INVALID_OPTIONS: 'Invalid options',
  /** No HTTP answer: connection refused, DNS failure, reset before the headers. */
  CLIENT_ERR_UNREACHABLE: 'The hub could not be reached',
  /** A non-2xx answer without the hub's JSON error body (a proxy's error page, for instance). */
  CLIENT_ERR_HTTP: 'The hub answered with an HTTP error',
  /** A 2xx answer that is not what the protocol says: wrong content type, no body, bad JSON. */
  CLIENT_ERR_PROTOCOL: 'The hub answered with something unexpected',
  /** The event stream ended or broke after it had opened. */
  CLIENT_ERR_STREAM_LOST: 'The event stream was interrupted',
  /** Nothing arrived (not even a heartbeat) for `idleTimeoutMs`: the connection is taken for dead. */
  CLIENT_ERR_STREAM_IDLE: 'The event stream went silent',
  /** One event was larger than `maxEventSize`. */
  CLIENT_ERR_EVENT_TOO_LARGE: 'An event exceeded the size limit',
  /** With `consumer`: another stream of the same consumer took over (`takeover`); this one stops rather than take it back. */
  CLIENT_ERR_CONSUMER_SUPERSEDED: 'A newer stream of this consumer took over',
  /** With `shareAcrossTabs`: more than `maxBufferedEvents` waited in this tab (the shared stream cannot pause for it). */
  CLIENT_ERR_TAB_BEHIND: 'This tab fell behind the shared stream',
} as const;

/** A failure detected by the client itself. */
export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

/** Thrown (or passed to `onError`) by the SDK. */
export class RelayClientError extends Error {
  /** `HUB_ERR_*` when the hub said why, otherwise one of {@link CLIENT_ERROR_CODES}. */
  readonly code: string;
  /** HTTP status of the answer, when there was one. */
  readonly status?: number;

  constructor(code: string, message?: string, options?: { status?: number; cause?: unknown }) {
    super(message ?? CLIENT_ERROR_CODES[code as ClientErrorCode] ?? code, { cause: options?.cause });
    this.name = 'RelayClientError';
    this.code = code;
    if (options?.status !== undefined) this.status = options.status;
  }
}

/** Reads a non-2xx answer into an error, using the hub's JSON error when it sent one. */
export async function errorFromResponse(response: Response): Promise<RelayClientError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The body broke off; the status alone still says what happened.
  }
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = body.error ?? {};
    if (typeof code === 'string' && code.length > 0) {
      return new RelayClientError(code, typeof message === 'string' ? message : code, { status: response.status });
    }
  } catch {
    // Not the hub's JSON: fall through to a generic HTTP error.
  }
  const reason = response.statusText ? ` ${response.statusText}` : '';
  return new RelayClientError('CLIENT_ERR_HTTP', `The hub answered HTTP ${response.status}${reason}`, {
    status: response.status,
  });
}

/** Wraps a rejected `fetch()` (no answer at all) with the underlying reason in the message. */
export function unreachableError(url: string, cause: unknown): RelayClientError {
  return new RelayClientError('CLIENT_ERR_UNREACHABLE', `Cannot reach the hub at ${url}: ${describeCause(cause)}`, {
    cause,
  });
}

function describeCause(cause: unknown): string {
  // Node's fetch rejects with TypeError('fetch failed') and puts the socket error in `cause`.
  let current: unknown = cause;
  let description = String((cause as Error | undefined)?.message ?? cause);
  for (let depth = 0; depth < 4 && current instanceof Error && current.cause !== undefined; depth++) {
    current = current.cause;
    const inner = current as Error & { code?: string };
    if (inner?.message) description = inner.message;
    else if (inner?.code) description = inner.code;
  }
  return description;
}
