import type { ServerResponse } from 'node:http';

/**
 * Lets go of Fastify's per-request objects once an event stream owns its response (after
 * `reply.hijack()`), so an idle stream holds only what it uses.
 *
 * Fastify 5 (`setupResponseListeners` in fastify/lib/reply.js) adds one function to the
 * response as both its `finish` and its `error` listener. Until the response ends, that
 * closure keeps the Reply and the Request alive (with their params, query, headers and logger
 * objects): measured with heap snapshots at 9,000 idle streams, 625 bytes of heap and about
 * 700 bytes of RSS per stream. When a stream the hub ends finishes, it also runs the
 * `onResponse` hooks, which timed the stream's whole lifetime as a request duration in
 * `sse_relay_http_request_duration_seconds`, which event streams must not be part of.
 *
 * The listener is found by what it is, not by its name: the function that is both a `finish`
 * and an `error` listener of the response. node:http adds only a `finish` listener of its own
 * (`resOnFinish`, which keep-alive needs: it stays), and the stream's listeners are on `close`
 * and `error`. If a Fastify upgrade attaches its listener otherwise, nothing matches and nothing
 * is removed (streams cost the memory again): `test/metrics/http-metrics.test.ts` ("does not
 * time an event stream the hub ends") then fails, which is the guard.
 */
export function releaseFrameworkListeners(res: ServerResponse): void {
  const onError = res.listeners('error');
  for (const listener of res.listeners('finish')) {
    if (!onError.includes(listener)) continue;
    res.removeListener('finish', listener as () => void);
    res.removeListener('error', listener as () => void);
  }
}
