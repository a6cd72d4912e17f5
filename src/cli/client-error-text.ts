import type { RelayClientError } from '../client/index.js';

/** One line for a client error: its message, code and HTTP status. */
export function describeClientError(error: RelayClientError): string {
  const status = error.status === undefined ? '' : `, HTTP ${error.status}`;
  return `${error.message} (${error.code}${status})`;
}

/**
 * What to do about a 401, the first thing a user meets on a hub with keys; empty otherwise.
 * `hadToken`: whether a token was sent (then it is the token that is wrong, not its absence).
 */
export function authHint(error: RelayClientError, hadToken: boolean): string {
  if (error.status !== 401) return '';
  return hadToken
    ? '; the hub rejected the token (check its key, --iss/--aud and expiry)'
    : '; the hub needs a token: pass --token (or set SSE_RELAY_TOKEN), e.g. from `sse-relay token`';
}

/** An id as printed in messages: quoted, and cut when long. */
export function quoteId(id: string): string {
  return JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}…` : id);
}
