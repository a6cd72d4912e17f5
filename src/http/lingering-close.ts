import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';

/** How much of an unread request body the hub reads and discards after answering early. */
export interface LingeringCloseBounds {
  /** Bytes discarded at most; past them the connection is closed. */
  readonly maxBytes: number;
  /** Milliseconds spent discarding at most; past them the connection is closed. */
  readonly maxMs: number;
}

/** nginx's lingering close: a few MiB or a couple of seconds. */
export const DEFAULT_LINGERING_CLOSE: LingeringCloseBounds = { maxBytes: 8 * 1024 * 1024, maxMs: 2000 };

/**
 * Lingering close for errors answered before the request body was read (413 over the size
 * limit, 415, a parser error). Fastify answers them with `Connection: close`, and Node then
 * closes the socket with the client's unread bytes in the kernel buffer: the kernel answers
 * with a reset, and a client still sending (Node's `fetch`, so the SDK) sees ECONNRESET instead
 * of the 413 about half the time. Instead the answer keeps the connection open, and the rest of
 * the body is read and discarded, within `bounds`; past them the connection is closed (by then
 * the client had time to read the answer). A client that finishes sending keeps its connection.
 */
export function installLingeringClose(app: FastifyInstance, bounds: LingeringCloseBounds = DEFAULT_LINGERING_CLOSE): void {
  app.addHook('onSend', async (request, reply, payload) => {
    const status = reply.statusCode;
    if (status >= 400 && status < 500 && reply.getHeader('connection') === 'close' && !request.raw.complete) {
      reply.removeHeader('connection');
      discardRest(request.raw, reply.raw, bounds);
    }
    return payload;
  });
}

/**
 * Reads the body from here on and drops it. Started before the answer is written: a body that
 * nobody reads when the answer finishes is "dumped" by Node, which then drops its bytes without
 * a trace, so they could not be counted against the bounds.
 */
function discardRest(body: IncomingMessage, answer: ServerResponse, bounds: LingeringCloseBounds): void {
  let discarded = 0;
  const cut = (): void => {
    clearTimeout(timer);
    // Never before the answer is out: seeing it is the point.
    if (answer.writableFinished) body.socket.destroy();
    else answer.once('finish', () => body.socket.destroy());
  };
  const timer = setTimeout(cut, bounds.maxMs);
  timer.unref();
  body.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > bounds.maxBytes) cut();
  });
  body.once('end', () => clearTimeout(timer));
  body.once('close', () => clearTimeout(timer));
  body.resume();
}
