import type { FastifyInstance } from 'fastify';
import { assertValidTopic, type Message } from '../../hub/message.js';
import type { AdapterContext } from '../../http/context.js';

/** What `GET /messages/:id` answers. */
export interface TopicInfo {
  id: string;
  /** Messages retained for replay. */
  retained: number;
  /** Event id of the oldest and newest retained message, null when none. */
  firstId: string | null;
  lastId: string | null;
  /** Subscribers connected to this hub process now. */
  subscribers: number;
}

/**
 * `GET /messages/:id`: what the hub holds for a topic (ids included: same rule as subscribing).
 * Counts and ids cover only what the caller may receive: private updates it is not granted are
 * neither counted nor named, whoever may read the topic's info (`--anonymous` included).
 */
export function registerTopicInfoRoute(app: FastifyInstance, context: AdapterContext): void {
  const { hub, authorizer } = context;
  app.get<{ Params: { id: string } }>('/messages/:id', async (request): Promise<TopicInfo> => {
    const principal = await authorizer.authenticate('subscriber', request.headers);
    const topic = request.params.id;
    assertValidTopic(topic);
    authorizer.assertMaySubscribe(principal, topic);
    // Reading history to filter it is skipped when the caller may receive everything anyway.
    const visible = authorizer.mayReceiveAllOf(principal, topic) ? undefined : (message: Message) => authorizer.mayReceive(principal, message);
    const stats = await hub.topicStats(topic, visible);
    return { id: topic, ...stats, subscribers: hub.subscriberCount(topic) };
  });
}
