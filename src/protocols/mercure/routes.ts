import type { FastifyInstance } from 'fastify';
import type { AdapterContext } from '../../http/context.js';
import { registerDiscovery } from './discovery.js';
import { createMercureErrorHandler } from './errors.js';
import { metadataUrl, registerMetadataRoute } from './metadata.js';
import { registerMercurePublishRoute } from './publish.js';
import { registerMercureSubscribeRoute } from './subscribe.js';

/**
 * The Mercure protocol on the shared hub: `GET` and `QUERY` (subscribe) and `POST` (publish) on
 * `/.well-known/mercure`, discovery `Link` headers and the protected resource metadata. A topic is an id of the article's API
 * and vice versa, so updates cross between the two.
 */
export function registerMercureProtocol(app: FastifyInstance, context: AdapterContext): void {
  registerDiscovery(app, context.options);
  const errorHandler = createMercureErrorHandler((request) => metadataUrl(context.options.publicUrl, request));
  registerMetadataRoute(app, context);
  registerMercureSubscribeRoute(app, context, errorHandler);
  registerMercurePublishRoute(app, context, errorHandler);
}
