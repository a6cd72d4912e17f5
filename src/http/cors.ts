import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RelayError } from '../hub/errors.js';
import { sendError } from './error-handler.js';
import { normaliseOrigin } from './origin.js';

/** Request headers a cross-origin page may send (EventSource reconnection, tokens, forms). */
const ALLOWED_HEADERS = ['authorization', 'content-type', 'last-event-id', 'cache-control', 'accept'];
/** Response headers a cross-origin page may read. */
const EXPOSED_HEADERS = 'Link, ETag, Mercure-Last-Event-ID, Replay-Gap, WWW-Authenticate, Retry-After';
// QUERY: Mercure subscriptions with the matchers in the body (RFC 10008).
const ALLOWED_METHODS = 'GET, HEAD, POST, QUERY, OPTIONS';

/**
 * CORS with an explicit allowlist (`--cors-origins`). Hand-rolled rather than @fastify/cors
 * because event streams hijack their reply: the headers are set on the reply, which Fastify
 * sends with ordinary answers and `openEventStream` passes to the stream's one `writeHead`.
 *
 * - A listed origin is echoed back with `Access-Control-Allow-Credentials: true` (cookies for
 *   `EventSource` with `withCredentials`).
 * - `*` in the list allows every other origin without credentials (`Access-Control-Allow-Origin:
 *   *`, never the reflected origin, which would let any site read credentialed responses).
 * - `null` (sandboxed frames, `data:` and `file:` pages) is never allowed.
 * - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here: 204 with the
 *   allowed methods and headers, or 403 `HUB_ERR_FORBIDDEN` without any CORS header for a
 *   refused origin.
 * With an empty list nothing is added and browsers apply the same-origin policy.
 */
export function installCors(app: FastifyInstance, origins: readonly string[]): void {
  const policy = corsPolicy(origins);
  if (policy === undefined) return;

  // A callback hook, not an async one: it runs on every request, publishes included, and an
  // async hook costs a promise and a microtask hop each time.
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if (answerCors(request, reply)) return;
    done();
  });

  /** Adds the CORS headers; true when it answered the request itself (a preflight). */
  function answerCors(request: FastifyRequest, reply: FastifyReply): boolean {
    const origin = request.headers.origin;
    const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
    if (!preflight) {
      for (const [name, value] of policy!.headersFor(origin)) void reply.header(name, value);
      return false;
    }
    void reply.header('Vary', 'Origin');
    if (origin === undefined) return false;
    const allowedOrigin = policy!.allowedOrigin(origin);
    if (allowedOrigin === undefined) {
      // In the project's error shape, like every other refusal.
      sendError(reply, new RelayError('HUB_ERR_FORBIDDEN', 'Origin not allowed'));
      return true;
    }
    void reply.header('Access-Control-Allow-Origin', allowedOrigin);
    if (allowedOrigin !== '*') void reply.header('Access-Control-Allow-Credentials', 'true');
    const requested = String(request.headers['access-control-request-headers'] ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h.length > 0);
    const allowed = requested.filter((h) => ALLOWED_HEADERS.includes(h));
    void reply.header('Access-Control-Allow-Methods', ALLOWED_METHODS);
    if (allowed.length > 0) void reply.header('Access-Control-Allow-Headers', allowed.join(', '));
    void reply.header('Access-Control-Max-Age', '600');
    void reply.code(204).send();
    return true;
  }
}

/** The allowlist of `--cors-origins`, as both HTTP paths apply it (see {@link installCors}). */
export interface CorsPolicy {
  /**
   * What `Access-Control-Allow-Origin` says to `origin`: the origin itself (a listed one, with
   * credentials), `*` (any other, when `*` is listed), or undefined (refused; never `null`).
   */
  allowedOrigin(origin: string): string | undefined;
  /** The response headers of a request that is not a preflight, `Vary: Origin` first. */
  headersFor(origin: string | undefined): [string, string][];
}

/** The policy of `origins`; undefined for an empty list (no CORS header at all). */
export function corsPolicy(origins: readonly string[]): CorsPolicy | undefined {
  if (origins.length === 0) return undefined;
  const anyOrigin = origins.includes('*');
  const listed = new Set(origins.filter((o) => o !== '*' && o !== 'null').map(normaliseOrigin));
  const allowedOrigin = (origin: string): string | undefined => {
    if (listed.has(origin)) return origin;
    return anyOrigin && origin !== 'null' ? '*' : undefined;
  };
  return {
    allowedOrigin,
    headersFor(origin) {
      const headers: [string, string][] = [['vary', 'origin']];
      const allowed = origin === undefined ? undefined : allowedOrigin(origin);
      if (allowed === undefined) return headers;
      headers.push(['access-control-allow-origin', allowed]);
      if (allowed !== '*') headers.push(['access-control-allow-credentials', 'true']);
      headers.push(['access-control-expose-headers', EXPOSED_HEADERS]);
      return headers;
    },
  };
}
