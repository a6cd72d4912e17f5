import type { FastifyInstance } from 'fastify';
import { assertValidTopic } from '../../hub/message.js';
import type { AdapterContext } from '../../http/context.js';
import { encodeEvent } from '../../sse/encode.js';
import type { SseStream } from '../../sse/stream.js';
import { Ticker } from '../../sse/ticker.js';

/**
 * `GET /messages/sse/:id`: the article's first example, a stream that says `<time> Looping`
 * every `--loop-interval`. All such streams share one timer.
 */
export function registerDemoLoopRoute(app: FastifyInstance, context: AdapterContext): void {
  const { options, streams } = context;
  const loop = new Ticker<SseStream>(options.loopInterval, (stream) => {
    stream.send(Buffer.from(encodeEvent({ data: `${new Date().toLocaleString()} Looping` })));
  });
  app.addHook('onClose', async () => loop.stop());

  app.get<{ Params: { id: string } }>('/messages/sse/:id', async (request, reply) => {
    assertValidTopic(request.params.id);
    const stream = streams.openPlain(reply, (ended) => loop.delete(ended));
    if (stream === undefined) return;
    stream.send(Buffer.from(encodeEvent({ data: `${new Date().toLocaleString()} Looping`, retry: options.retry })));
    loop.add(stream);
  });
}
