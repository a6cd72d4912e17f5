import type { FastifyInstance } from 'fastify';
import type { AdapterContext } from '../../http/context.js';
import { registerDiscovery } from './discovery.js';
import { createMercureErrorHandler } from './errors.js';
import { metadataUrl, registerMetadataRoute } from './metadata.js';
import { registerMercurePublishRoute } from './publish.js';
import { registerMercureSubscribeRoute } from './subscribe.js';
import { ActiveSubscriptions, registerSubscriptionsApi } from './subscriptions.js';
import { RelayError } from '../../hub/errors.js';

/**
 * The Mercure protocol on the shared hub: `GET` and `QUERY` (subscribe) and `POST` (publish) on
 * `/.well-known/mercure`, discovery `Link` headers and the protected resource metadata; with
 * `--subscriptions`, subscription events and the subscriptions API. A topic is an id of the article's API
 * and vice versa, so updates cross between the two.
 */
export function registerMercureProtocol(app: FastifyInstance, context: AdapterContext): void {
  registerDiscovery(app, context.options);
  const errorHandler = createMercureErrorHandler((request) => metadataUrl(context.options.publicUrl, request));
  registerMetadataRoute(app, context);
  const active = context.options.subscriptions
    ? new ActiveSubscriptions(context.hub, (error) => {
        // At shutdown the last events cannot be published any more: that is expected.
        if (!(error instanceof RelayError && error.code === 'HUB_ERR_SHUTTING_DOWN')) app.log.warn({ err: error }, 'a subscription event was not published');
      })
    : undefined;
  if (active !== undefined) registerSubscriptionsApi(app, context, active, errorHandler);
  registerMercureSubscribeRoute(app, context, errorHandler, active);
  registerMercurePublishRoute(app, context, errorHandler);
}
