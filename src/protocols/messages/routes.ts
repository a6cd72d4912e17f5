import type { FastifyInstance } from 'fastify';
import type { AdapterContext } from '../../http/context.js';
import { registerConsumerRoutes } from './consumers.js';
import { registerDemoLoopRoute } from './demo-loop.js';
import { registerPublishBatchRoute } from './publish-batch.js';
import { registerPublishRoute } from './publish.js';
import { registerSubscribeRoute } from './subscribe.js';
import { registerTopicInfoRoute } from './topic-info.js';

/** The article's API: `/messages/subscribe/:id`, `/messages/:id`, `/messages/sse/:id`, and batches on `/messages`. */
export function registerMessagesProtocol(app: FastifyInstance, context: AdapterContext): void {
  registerSubscribeRoute(app, context);
  registerPublishRoute(app, context);
  registerPublishBatchRoute(app, context);
  registerDemoLoopRoute(app, context);
  registerTopicInfoRoute(app, context);
  registerConsumerRoutes(app, context);
}
