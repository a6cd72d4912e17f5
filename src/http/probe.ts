import type { FastifyInstance } from 'fastify';
import { RelayError } from '../hub/errors.js';
import { encodeEvent } from '../sse/encode.js';
import type { EventStreams } from './event-streams.js';

/** Where `sse-relay doctor` (and the SDK's `diagnose()`) asks for timed probe events. */
export const PROBE_PATH = '/.well-known/sse-relay/probe';

/**
 * Most probe events one request may ask for, the interval bounds (ms), and the longest silence
 * of the idle phase (ms): a heartbeat interval above it cannot be checked by one probe.
 */
export const PROBE_LIMITS = Object.freeze({ maxCount: 50, minIntervalMs: 10, maxIntervalMs: 5000, maxIdleMs: 120_000 });

/** The idle phase lasts one heartbeat interval and this much more, so one heartbeat must pass. */
const IDLE_MARGIN_MS = 1000;

const HEARTBEAT = Buffer.from(':\n\n');

interface ProbeRequest {
  Querystring: { count?: string; interval?: string; 'honour-proxy'?: string; idle?: string };
}

/**
 * `GET /.well-known/sse-relay/probe?count=10&interval=200`: an event stream of `count` events of
 * type `probe`, one every `interval` ms, each with `{"seq", "sentAt"}` (server time, ms since the
 * epoch), then the end of the stream. A client compares arrival times with the sending schedule
 * to tell a buffering proxy (arrivals bunched), compression (`Content-Encoding`) or an idle cut.
 * `?honour-proxy=0` leaves out `X-Accel-Buffering: no`, to see what a proxy does by itself.
 *
 * `?idle=1` adds an idle phase, which is what a quiet subscription looks like: after the last
 * probe event, an event `probe-idle` (`{"heartbeatIntervalMs", "silentForMs"}`), then only
 * heartbeat comments at the hub's `--heartbeat-interval` for one interval and a second more, then
 * an event `probe-end`. A proxy whose idle (read) timeout is shorter than the heartbeat interval
 * cuts the stream in that silence, as it cuts every quiet subscription. Without heartbeats
 * (`--heartbeat-interval 0`) there is no idle phase: any idle timeout ends quiet streams.
 * Open to anyone: it carries no data and ends on its own (at most 50 events, 250 s, then at most
 * 121 s of idle phase).
 */
export function registerProbeRoute(app: FastifyInstance, streams: EventStreams, heartbeatIntervalMs: number): void {
  app.get<ProbeRequest>(PROBE_PATH, async (request, reply) => {
    const count = bounded(request.query.count, 10, 1, PROBE_LIMITS.maxCount, 'count');
    const interval = bounded(request.query.interval, 200, PROBE_LIMITS.minIntervalMs, PROBE_LIMITS.maxIntervalMs, 'interval');
    const idle = request.query.idle === '1' && heartbeatIntervalMs > 0;
    let timer: NodeJS.Timeout | undefined;
    let idleEnd: NodeJS.Timeout | undefined;
    const stream = streams.openPlain(
      reply,
      () => {
        clearInterval(timer);
        clearTimeout(idleEnd);
      },
      { askProxiesNotToBuffer: request.query['honour-proxy'] !== '0' },
    );
    if (stream === undefined) return;
    // After the last event's write: the end must not overtake it.
    const end = (): void => void setImmediate(() => stream.close('client'));
    const idlePhase = (): void => {
      const heartbeatEvery = Math.min(heartbeatIntervalMs, PROBE_LIMITS.maxIdleMs);
      const silentForMs = heartbeatEvery + IDLE_MARGIN_MS;
      stream.send(Buffer.from(encodeEvent({ event: 'probe-idle', data: JSON.stringify({ heartbeatIntervalMs, silentForMs }) })));
      // Its own heartbeats, a full interval after the silence begins: the shared heartbeat timer
      // could tick at once and make the silence shorter than the one real streams have.
      timer = setInterval(() => stream.send(HEARTBEAT), heartbeatEvery);
      idleEnd = setTimeout(() => {
        clearInterval(timer);
        stream.send(Buffer.from(encodeEvent({ event: 'probe-end', data: '{}' })));
        end();
      }, silentForMs);
    };
    let seq = 0;
    const tick = (): void => {
      seq++;
      stream.send(Buffer.from(encodeEvent({ event: 'probe', data: JSON.stringify({ seq, of: count, intervalMs: interval, sentAt: Date.now() }) })));
      if (seq >= count) {
        clearInterval(timer);
        if (idle) idlePhase();
        else end();
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
