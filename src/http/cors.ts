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
  if (origins.length === 0) return;
  const anyOrigin = origins.includes('*');
  const listed = new Set(origins.filter((o) => o !== '*' && o !== 'null').map(normaliseOrigin));

  // A callback hook, not an async one: it runs on every request, publishes included, and an
  // async hook costs a promise and a microtask hop each time.
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if (answerCors(request, reply)) return;
    done();
  });

  /** Adds the CORS headers; true when it answered the request itself (a preflight). */
  function answerCors(request: FastifyRequest, reply: FastifyReply): boolean {
    void reply.header('Vary', 'Origin');
    const origin = request.headers.origin;
    const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
    if (origin === undefined) return false;
    const credentialed = listed.has(origin);
    if (!credentialed && (!anyOrigin || origin === 'null')) {
      if (!preflight) return false;
      // In the project's error shape, like every other refusal.
      sendError(reply, new RelayError('HUB_ERR_FORBIDDEN', 'Origin not allowed'));
      return true;
    }
    void reply.header('Access-Control-Allow-Origin', credentialed ? origin : '*');
    if (credentialed) void reply.header('Access-Control-Allow-Credentials', 'true');
    if (!preflight) {
      void reply.header('Access-Control-Expose-Headers', EXPOSED_HEADERS);
      return false;
    }
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
