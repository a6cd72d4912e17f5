import type { FastifyInstance } from 'fastify';
import type { ServeOptions } from '../../config/options.js';

/** The hub's path, as the Mercure specification fixes it. */
export const MERCURE_PATH = '/.well-known/mercure';

/**
 * The hub URL advertised to clients: under `--public-url` when set (behind a proxy), else the
 * path alone, which clients resolve against the URL they requested (RFC 8288 allows relative
 * references), so no `Host` header is ever trusted to build it.
 */
export function hubUrl(options: ServeOptions): string {
  return options.publicUrl === undefined ? MERCURE_PATH : `${options.publicUrl.replace(/\/+$/, '')}${MERCURE_PATH}`;
}

/** The `Link` header value of Mercure discovery: `<hub>; rel="mercure"`. */
export function discoveryLink(options: ServeOptions): string {
  return `<${hubUrl(options)}>; rel="mercure"`;
}

/**
 * Mercure discovery: `Link: <hub>; rel="mercure"` on the responses about topics (the article's
 * `/messages/...` routes, whose ids are Mercure topics) and on the hub's own responses. Set on
 * the reply: hijacked event streams send the reply's headers too (see `openEventStream`).
 */
export function registerDiscovery(app: FastifyInstance, options: ServeOptions): void {
  const link = discoveryLink(options);
  // A callback hook: it runs on every publish, and an async one costs a promise each time.
  app.addHook('onRequest', (request, reply, done) => {
    const url = request.url;
    if (url.startsWith('/messages/') || url === MERCURE_PATH || url.startsWith(`${MERCURE_PATH}?`)) void reply.header('Link', link);
    done();
  });
}
