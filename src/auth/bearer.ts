/**
 * Bearer tokens on the wire (RFC 6750): where a request carries its token, and the
 * `WWW-Authenticate` challenge an authorization failure answers with.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { RelayError, type ErrorCode } from '../hub/errors.js';

/**
 * Cookies a browser's `EventSource` can carry a token in, by precedence: Mercure 1.x's name,
 * then hub 0.x's. An `Authorization: Bearer` header always wins over both.
 */
export const TOKEN_COOKIES = ['__Secure-mercure_access_token', 'mercureAuthorization'] as const;

/** Tokens longer than this are refused without parsing (Mercure's limit too). */
export const MAX_TOKEN_LENGTH = 64 * 1024;

const BEARER = /^Bearer(?:[ \t]+(\S*))?[ \t]*$/i;

/**
 * The token a request presents: the `Authorization: Bearer` header (scheme matched
 * case-insensitively) if any, else the first token cookie. Undefined when there is none; an
 * empty string for a `Bearer` header with no token (which then fails verification).
 */
export function presentedToken(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = BEARER.exec(authorization.trim());
    if (match) return match[1] ?? '';
  }
  const cookie = headers.cookie;
  if (typeof cookie !== 'string' || cookie.length === 0) return undefined;
  const cookies = parseCookies(cookie);
  for (const name of TOKEN_COOKIES) {
    const value = cookies.get(name);
    if (value !== undefined) return value;
  }
  return undefined;
}

/**
 * True when the token {@link presentedToken} finds comes from a cookie (there is no `Bearer`
 * header): a browser adds cookies to requests any site can make, so such a request may be
 * forged; a header cannot be.
 */
export function isTokenFromCookie(headers: IncomingHttpHeaders): boolean {
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && BEARER.test(authorization.trim())) return false;
  const cookie = headers.cookie;
  if (typeof cookie !== 'string' || cookie.length === 0) return false;
  const cookies = parseCookies(cookie);
  return TOKEN_COOKIES.some((name) => cookies.has(name));
}

function parseCookies(header: string): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    if (equals < 0) continue;
    const name = pair.slice(0, equals).trim();
    let value = pair.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    // The first occurrence wins, as browsers send the most specific cookie first.
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

/** RFC 6750 error codes. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/** The `WWW-Authenticate` challenge of an authorization failure; carried as the error's cause. */
export class BearerChallenge {
  constructor(
    readonly error?: BearerErrorCode,
    readonly description?: string,
  ) {}

  /** `Bearer realm="sse-relay"` plus `error` and `error_description` when set. */
  toString(): string {
    let value = 'Bearer realm="sse-relay"';
    if (this.error) value += `, error="${this.error}"`;
    // Quoted-string: no quotes or backslashes; descriptions here are our own fixed texts.
    if (this.description) value += `, error_description="${this.description.replace(/["\\]/g, '')}"`;
    return value;
  }
}

/** A RelayError whose answer carries an RFC 6750 challenge. */
export function authorizationError(code: ErrorCode, message: string, challenge: BearerChallenge): RelayError {
  return new RelayError(code, message, { cause: challenge });
}

/** The `WWW-Authenticate` value for an error raised by {@link authorizationError}, if it is one. */
export function challengeOf(error: unknown): string | undefined {
  if (error instanceof RelayError && error.cause instanceof BearerChallenge) return error.cause.toString();
  return undefined;
}
