import type { FastifyInstance } from 'fastify';
import type { AdapterContext } from '../../http/context.js';
import { registerDiscovery } from './discovery.js';
import { createMercureErrorHandler } from './errors.js';
import { metadataUrl, registerMetadataRoute } from './metadata.js';
import { registerMercurePublishRoute } from './publish.js';
import { registerMercureSubscribeRoute } from './subscribe.js';
import { ActiveSubscriptions, registerSubscriptionsApi } from './subscriptions.js';
import { RelayError } from '../../hub/errors.js';
import type { ServeOptions } from '../../config/options.js';
import { RedisSubscriptionRegistry } from './redis-subscription-registry.js';
import { LocalSubscriptionRegistry, type SubscriptionRegistry } from './subscription-registry.js';

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
  let active: ActiveSubscriptions | undefined;
  if (context.options.subscriptions) {
    const registry = subscriptionRegistryFor(context.options, (message, error) => app.log.warn({ err: error }, message));
    active = new ActiveSubscriptions(context.hub, registry, (error) => {
      // At shutdown the last events cannot be published any more: that is expected.
      if (!(error instanceof RelayError && error.code === 'HUB_ERR_SHUTTING_DOWN')) app.log.warn({ err: error }, 'a subscription event was not published');
    });
    app.addHook('onReady', () => registry.open());
    app.addHook('onClose', () => registry.close());
    registerSubscriptionsApi(app, context, active, errorHandler);
  }
  registerMercureSubscribeRoute(app, context, errorHandler, active);
  registerMercurePublishRoute(app, context, errorHandler);
}

/**
 * With the Redis store, several hub processes share one deployment: the registry lives in the
 * same Redis, so that every node lists every node's subscriptions. Otherwise one process owns
 * the store and its own memory is enough.
 */
function subscriptionRegistryFor(options: ServeOptions, warn: (message: string, error?: unknown) => void): SubscriptionRegistry {
  const shared = options.store.startsWith('redis://') || options.store.startsWith('rediss://');
  return shared ? new RedisSubscriptionRegistry({ url: options.store, keyPrefix: options.redisKeyPrefix, warn }) : new LocalSubscriptionRegistry();
}
