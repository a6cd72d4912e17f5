import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TOKEN_COOKIES } from '../../auth/bearer.js';
import type { AdapterContext } from '../../http/context.js';
import { MERCURE_PATH } from './discovery.js';

/** The authorization detail type of Mercure grants (RFC 9396), the one the spec advertises. */
const AUTHORIZATION_DETAIL_TYPE = 'https://mercure.rocks/authorization-detail';

/**
 * Where the hub's OAuth 2.0 Protected Resource Metadata lives (RFC 9728 §3.1: the well-known
 * prefix inserted before the path of the hub URL).
 */
export const METADATA_PATH = `/.well-known/oauth-protected-resource${MERCURE_PATH}`;

/**
 * The hub's public origin: `--public-url`'s when set, else the scheme and `Host` the request
 * reached it at (absolute URLs are required in metadata and challenges, and behind a proxy
 * `--public-url` or `--trust-proxy` make them right).
 */
export function publicOrigin(publicUrl: string | undefined, request: FastifyRequest): string {
  if (publicUrl !== undefined) return publicUrl.replace(/\/+$/, '');
  return `${request.protocol}://${request.host}`;
}

/** The absolute URL of the metadata document, for `resource_metadata` in challenges. */
export function metadataUrl(publicUrl: string | undefined, request: FastifyRequest): string {
  return `${publicOrigin(publicUrl, request)}${METADATA_PATH}`;
}

/**
 * `GET /.well-known/oauth-protected-resource/.well-known/mercure`: the hub as an OAuth protected
 * resource (RFC 9728, Mercure's "Protected Resource Metadata"). `resource` is the identifier
 * tokens name in `aud`: `--jwt-audience` when set, else the hub's public URL.
 */
export function registerMetadataRoute(app: FastifyInstance, context: AdapterContext): void {
  const { options } = context;
  // The keys the Authorizer builds its verifiers from: without any, tokens are ignored.
  const usesTokens = options.publisherJwtKey !== undefined || options.subscriberJwtKey !== undefined || options.jwksUrl !== undefined;
  app.get(METADATA_PATH, async (request, reply) => {
    const document: Record<string, unknown> = {
      resource: options.jwtAudience ?? `${publicOrigin(options.publicUrl, request)}${MERCURE_PATH}`,
    };
    if (options.authorizationServers.length > 0) document.authorization_servers = options.authorizationServers;
    document.authorization_details_types_supported = [AUTHORIZATION_DETAIL_TYPE];
    // An open hub ignores tokens: it accepts them by no method at all.
    document.bearer_methods_supported = usesTokens ? ['header'] : [];
    if (usesTokens) document.mercure_cookie = TOKEN_COOKIES[0];
    if (options.subscriptions) document.mercure_subscriptions = true;
    return reply.code(200).type('application/json').header('Cache-Control', 'max-age=60').send(JSON.stringify(document));
  });
}
