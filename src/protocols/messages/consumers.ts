import type { FastifyInstance } from 'fastify';
import { assertValidTopic } from '../../hub/message.js';
import type { ConsumerInfo } from '../../hub/consumers.js';
import type { AdapterContext } from '../../http/context.js';
import { consumerCaller } from './consumer-caller.js';

interface ConsumerRequest {
  Params: { id: string; name: string };
}

/**
 * The acknowledged consumers of an id (README "Acknowledged consumers"), each authenticated as
 * a subscriber granted the id, like `GET /messages/subscribe/:id`:
 * - `POST /messages/:id/consumers/:name/ack` with `{"id": "<event id>"}` acknowledges every
 *   message up to it and answers the consumer;
 * - `GET /messages/:id/consumers` lists the caller's consumers of the id;
 * - `GET /messages/:id/consumers/:name` answers one (403 when it is another subject's).
 */
export function registerConsumerRoutes(app: FastifyInstance, context: AdapterContext): void {
  const { authorizer, consumers } = context;
  const caller = async (request: { headers: Record<string, string | string[] | undefined> }, topic: string) => {
    const principal = await authorizer.authenticate('subscriber', request.headers);
    assertValidTopic(topic);
    authorizer.assertMaySubscribe(principal, topic);
    return consumerCaller(principal);
  };

  app.post<ConsumerRequest & { Body: unknown }>('/messages/:id/consumers/:name/ack', async (request): Promise<ConsumerInfo> => {
    const { id: topic, name } = request.params;
    const who = await caller(request, topic);
    const body = request.body;
    const id = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { id?: unknown }).id : typeof body === 'string' ? body.trim() : undefined;
    return consumers.ack(topic, name, who, id);
  });

  app.get<{ Params: { id: string } }>('/messages/:id/consumers', async (request): Promise<{ id: string; consumers: ConsumerInfo[] }> => {
    const topic = request.params.id;
    const who = await caller(request, topic);
    return { id: topic, consumers: await consumers.list(topic, who) };
  });

  app.get<ConsumerRequest>('/messages/:id/consumers/:name', async (request): Promise<ConsumerInfo> => {
    const { id: topic, name } = request.params;
    return consumers.get(topic, name, await caller(request, topic));
  });
}
