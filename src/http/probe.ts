import type { FastifyInstance } from 'fastify';
import { RelayError } from '../hub/errors.js';
import { encodeEvent } from '../sse/encode.js';
import type { EventStreams } from './event-streams.js';

/** Where `sse-relay doctor` (and the SDK's `diagnose()`) asks for timed probe events. */
export const PROBE_PATH = '/.well-known/sse-relay/probe';

/** Most probe events one request may ask for, and the interval bounds (ms). */
export const PROBE_LIMITS = Object.freeze({ maxCount: 50, minIntervalMs: 10, maxIntervalMs: 5000 });

interface ProbeRequest {
  Querystring: { count?: string; interval?: string; 'honour-proxy'?: string };
}

/**
 * `GET /.well-known/sse-relay/probe?count=10&interval=200`: an event stream of `count` events of
 * type `probe`, one every `interval` ms, each with `{"seq", "sentAt"}` (server time, ms since the
 * epoch), then the end of the stream. A client compares arrival times with the sending schedule
 * to tell a buffering proxy (arrivals bunched), compression (`Content-Encoding`) or an idle cut.
 * `?honour-proxy=0` leaves out `X-Accel-Buffering: no`, to see what a proxy does by itself.
 * Open to anyone: it carries no data and ends on its own (at most 50 events, 250 s).
 */
export function registerProbeRoute(app: FastifyInstance, streams: EventStreams): void {
  app.get<ProbeRequest>(PROBE_PATH, async (request, reply) => {
    const count = bounded(request.query.count, 10, 1, PROBE_LIMITS.maxCount, 'count');
    const interval = bounded(request.query.interval, 200, PROBE_LIMITS.minIntervalMs, PROBE_LIMITS.maxIntervalMs, 'interval');
    let timer: NodeJS.Timeout | undefined;
    const stream = streams.openPlain(reply, () => clearInterval(timer), { askProxiesNotToBuffer: request.query['honour-proxy'] !== '0' });
    if (stream === undefined) return;
    let seq = 0;
    const tick = (): void => {
      seq++;
      stream.send(Buffer.from(encodeEvent({ event: 'probe', data: JSON.stringify({ seq, of: count, intervalMs: interval, sentAt: Date.now() }) })));
      if (seq >= count) {
        clearInterval(timer);
        // After the last event's write: the end must not overtake it.
        setImmediate(() => stream.close('client'));
      }
    };
    timer = setInterval(tick, interval);
    tick();
  });
}

function bounded(raw: string | undefined, fallback: number, min: number, max: number, name: string): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new RelayError('HUB_ERR_BAD_REQUEST', `${name} must be an integer from ${min} to ${max}`);
  return Number(raw);
}
