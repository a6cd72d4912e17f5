import type { FastifyInstance } from 'fastify';
import type { AdapterContext } from '../../http/context.js';
import { registerDiscovery } from './discovery.js';
import { registerMercurePublishRoute } from './publish.js';
import { registerMercureSubscribeRoute } from './subscribe.js';

/**
 * The Mercure protocol on the shared hub: `GET` (subscribe) and `POST` (publish) on
 * `/.well-known/mercure`, and discovery `Link` headers. A topic is an id of the article's API
 * and vice versa, so updates cross between the two.
 */
export function registerMercureProtocol(app: FastifyInstance, context: AdapterContext): void {
  registerDiscovery(app, context.options);
  registerMercureSubscribeRoute(app, context);
  registerMercurePublishRoute(app, context);
}
