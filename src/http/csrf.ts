import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isTokenFromCookie } from '../auth/bearer.js';
import { RelayError } from '../hub/errors.js';
import { normaliseOrigin } from './origin.js';

/** Methods that change nothing, so a forged one gains an attacker nothing (reading is CORS's job). */
// QUERY is safe (RFC 10008): a Mercure subscription, and browsers preflight it anyway.
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'QUERY']);

const INSTEAD = 'send the token in an Authorization: Bearer header instead';

/** Where the CSRF check takes the origins it trusts from. */
export interface CsrfOptions {
  /** `--cors-origins`: origins trusted with credentials. `*` and `null` are never trusted here. */
  readonly corsOrigins: readonly string[];
  /** `--public-url`: the hub's own origin as browsers see it behind a proxy. */
  readonly publicUrl: string | undefined;
}

/**
 * Refuses cross-site request forgery with the token cookie. A browser attaches cookies to a
 * form post from any site, so a request that changes state (any method but GET, HEAD and
 * OPTIONS) and whose token comes from the `mercureAuthorization` or
 * `__Secure-mercure_access_token` cookie is accepted only when its `Origin` (or, without one,
 * its `Referer`) is the hub's own origin (the request's scheme and `Host`, or `--public-url`)
 * or listed in `--cors-origins`. Otherwise: 403 `HUB_ERR_ORIGIN_NOT_ALLOWED`, before the body
 * is read. With neither header the request is refused too, as Mercure's hub does: every
 * browser sends `Origin` on a POST, so only a non-browser client omits both, and it can send
 * a `Bearer` header, which no other site can make a browser send.
 */
export function installCsrfCheck(app: FastifyInstance, options: CsrfOptions): void {
  const trusted = new Set(options.corsOrigins.filter((o) => o !== '*' && o !== 'null').map(normaliseOrigin));
  if (options.publicUrl !== undefined) trusted.add(new URL(options.publicUrl).origin);

  // A callback hook, not an async one: it runs on every request, publishes included, and an
  // async hook costs a promise and a microtask hop each time.
  app.addHook('onRequest', (request, _reply, done) => {
    if (SAFE_METHODS.has(request.method) || request.headers.cookie === undefined || !isTokenFromCookie(request.headers)) return done();
    const origin = requestOrigin(request);
    if (origin === undefined) {
      return done(new RelayError('HUB_ERR_ORIGIN_NOT_ALLOWED', `A request authenticated by a token cookie needs an Origin or Referer header; ${INSTEAD}`));
    }
    if (trusted.has(origin) || origin === ownOrigin(request)) return done();
    // The refused origin is not echoed: it is the client's text, and the client knows it.
    done(new RelayError('HUB_ERR_ORIGIN_NOT_ALLOWED', `A request authenticated by a token cookie is accepted only from the hub's own origin or one in --cors-origins; ${INSTEAD}`));
  });
}

/** The origin a browser says the request comes from: `Origin`, else the `Referer`'s origin. */
function requestOrigin(request: FastifyRequest): string | undefined {
  const origin = request.headers.origin;
  if (origin !== undefined) return normaliseOrigin(origin);
  const referer = request.headers.referer;
  if (referer === undefined) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}

/**
 * The hub's origin as this request reached it. A browser sets `Host` itself, so a page
 * elsewhere cannot make it name the hub while its `Origin` names another site.
 */
function ownOrigin(request: FastifyRequest): string | undefined {
  if (!request.host) return undefined;
  try {
    return new URL(`${request.protocol}://${request.host}`).origin;
  } catch {
    return undefined;
  }
}
