import type { FastifyInstance } from 'fastify';
import { assertValidTopic } from '../../hub/message.js';
import type { AdapterContext } from '../../http/context.js';
import { encodeEvent } from '../../sse/encode.js';
import { SseStream } from '../../sse/stream.js';
import { Ticker } from '../../sse/ticker.js';

/**
 * `GET /messages/sse/:id`: the article's first example, a stream that says `<time> Looping`
 * every `--loop-interval`. All such streams share one timer.
 */
export function registerDemoLoopRoute(app: FastifyInstance, context: AdapterContext): void {
  const { options, extraStreams } = context;
  const loop = new Ticker<SseStream>(options.loopInterval, (stream) => {
    stream.send(Buffer.from(encodeEvent({ data: `${new Date().toLocaleString()} Looping` })));
  });
  app.addHook('onClose', async () => loop.stop());

  app.get<{ Params: { id: string } }>('/messages/sse/:id', async (request, reply) => {
    assertValidTopic(request.params.id);
    reply.hijack();
    const stream = new SseStream(reply.raw, { maxBacklogBytes: options.maxBacklog });
    stream.onClose((stream) => {
      loop.delete(stream);
      extraStreams.delete(stream);
    });
    stream.open();
    stream.send(Buffer.from(encodeEvent({ data: `${new Date().toLocaleString()} Looping`, retry: options.retry })));
    loop.add(stream);
    extraStreams.add(stream);
  });
}
