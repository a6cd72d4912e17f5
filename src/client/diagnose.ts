import { createParser } from 'eventsource-parser';

/** Options of {@link diagnose}. */
export interface DiagnoseOptions {
  /** The hub's public URL, as clients reach it (through the proxy). */
  url: string;
  /** Probe events to ask for (default 10, at most 50). */
  count?: number;
  /** Interval between them, ms (default 200). */
  intervalMs?: number;
  /** Ask the hub to leave out `X-Accel-Buffering: no` (to see what the proxy does by itself). */
  withoutProxyHint?: boolean;
  /**
   * After the timed events, keep the stream quiet (the hub's heartbeats only) for one heartbeat
   * interval and a second more, to see whether an idle timeout on the way cuts quiet streams.
   * This adds the hub's `--heartbeat-interval` (15 s by default) to the run. Default true.
   */
  idleCheck?: boolean;
  /** The `fetch` to use. Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** One problem found, with how to fix it. */
export interface DiagnoseFinding {
  readonly kind: 'buffered' | 'compressed' | 'cut' | 'delayed' | 'unreachable';
  readonly detail: string;
  readonly fix: string;
}

/** What {@link diagnose} measured. */
export interface DiagnoseReport {
  readonly ok: boolean;
  readonly findings: readonly DiagnoseFinding[];
  /** ms from the request to the response headers. */
  readonly headersMs: number | undefined;
  /** ms from the request to each probe event's arrival. */
  readonly arrivalsMs: readonly number[];
  readonly expected: number;
  readonly intervalMs: number;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The idle phase, when it ran (asked for, and the hub sends heartbeats): the hub's heartbeat
   * interval, the silence it asked the path to keep open, and whether the stream lived through it
   * (if not, `cutAfterMs`: ms from the start of the silence to the end of the stream).
   */
  readonly idle?: { readonly heartbeatIntervalMs: number; readonly silentForMs: number; readonly survived: boolean; readonly cutAfterMs?: number };
}

const BUFFERING_FIX =
  'nginx: `proxy_buffering off;` (or let X-Accel-Buffering through: no `proxy_ignore_headers X-Accel-Buffering`), `proxy_http_version 1.1;`; ' +
  'Apache: `SetEnv no-gzip 1` and `ProxyPass ... flushpackets=on`; HAProxy: `option http-no-delay`; Cloudflare/CDNs: bypass the cache for text/event-stream.';

const IDLE_TIMEOUT_FIX =
  'raise the proxy’s idle/read timeout above the hub’s --heartbeat-interval (nginx: `proxy_read_timeout 1h;`; HAProxy: `timeout tunnel 1h`; AWS ALB: the idle timeout; Cloudflare cuts after 100 s), ' +
  'or lower the hub’s --heartbeat-interval below the timeout (clients then see a heartbeat in time).';

/**
 * Opens the hub's probe stream (`/.well-known/sse-relay/probe`) through the same path clients
 * use and tells, from when its timed events arrive, whether something between the hub and the
 * client buffers the stream (arrivals bunched instead of spaced by the interval), compresses it
 * (`Content-Encoding`), cuts it before the end (a read timeout) or in a silence as long as the
 * hub's heartbeat interval (an idle timeout), or delays it.
 */
export async function diagnose(options: DiagnoseOptions): Promise<DiagnoseReport> {
  const count = options.count ?? 10;
  const intervalMs = options.intervalMs ?? 200;
  const url = new URL('.well-known/sse-relay/probe', options.url.endsWith('/') ? options.url : `${options.url}/`);
  url.searchParams.set('count', String(count));
  url.searchParams.set('interval', String(intervalMs));
  if (options.withoutProxyHint) url.searchParams.set('honour-proxy', '0');
  if (options.idleCheck !== false) url.searchParams.set('idle', '1');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const findings: DiagnoseFinding[] = [];
  const arrivalsMs: number[] = [];
  const started = performance.now();
  let headersMs: number | undefined;
  const headers: Record<string, string> = {};
  let idleAnnounced: { heartbeatIntervalMs: number; silentForMs: number; at: number } | undefined;
  let idleEnded = false;
  try {
    const response = await fetchImpl(url, { headers: { Accept: 'text/event-stream', 'Accept-Encoding': 'gzip, deflate, br' } });
    headersMs = performance.now() - started;
    response.headers.forEach((value, name) => (headers[name] = value));
    if (!response.ok || !response.body) {
      findings.push({ kind: 'unreachable', detail: `the probe answered ${response.status}`, fix: 'check the URL (the hub’s public base URL) and that the proxy forwards /.well-known/sse-relay/' });
      return { ok: false, findings, headersMs, arrivalsMs, expected: count, intervalMs, headers };
    }
    const parser = createParser({
      onEvent: (event) => {
        if (event.event === 'probe') arrivalsMs.push(performance.now() - started);
        else if (event.event === 'probe-idle') idleAnnounced = { ...idlePhaseOf(event.data), at: performance.now() };
        else if (event.event === 'probe-end') idleEnded = true;
      },
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
  } catch (error) {
    if (headersMs === undefined) {
      findings.push({ kind: 'unreachable', detail: `no answer: ${(error as Error).message}`, fix: 'check the URL and that the hub is running' });
      return { ok: false, findings, headersMs, arrivalsMs, expected: count, intervalMs, headers };
    }
  }
  const endedAt = performance.now();
  let idle: DiagnoseReport['idle'];
  if (idleAnnounced !== undefined) {
    const { heartbeatIntervalMs, silentForMs } = idleAnnounced;
    idle = idleEnded ? { heartbeatIntervalMs, silentForMs, survived: true } : { heartbeatIntervalMs, silentForMs, survived: false, cutAfterMs: endedAt - idleAnnounced.at };
  }
  const encoding = headers['content-encoding'];
  if (encoding && encoding !== 'identity') {
    findings.push({ kind: 'compressed', detail: `the stream arrived with Content-Encoding: ${encoding}`, fix: 'disable compression for text/event-stream (nginx: `gzip off;` in the location, or leave text/event-stream out of gzip_types)' });
  }
  if (arrivalsMs.length < count) {
    findings.push({ kind: 'cut', detail: `only ${arrivalsMs.length} of ${count} probe events arrived; the stream ended ${Math.round(performance.now() - started)} ms after the request`, fix: 'raise the proxy’s read/idle timeout above --heartbeat-interval (nginx: `proxy_read_timeout 1h;`)' });
  }
  if (idle !== undefined && !idle.survived) {
    findings.push({
      kind: 'cut',
      detail: `cut at an idle timeout: the stream ended ${Math.round(idle.cutAfterMs!)} ms into a silence of ${idle.silentForMs} ms (only the hub's heartbeat comment, every ${idle.heartbeatIntervalMs} ms); a timeout on the way is shorter than the heartbeat interval, so it cuts every quiet subscription`,
      fix: IDLE_TIMEOUT_FIX,
    });
  }
  if (arrivalsMs.length >= 3) {
    const spread = arrivalsMs[arrivalsMs.length - 1]! - arrivalsMs[0]!;
    const scheduled = (arrivalsMs.length - 1) * intervalMs;
    if (spread < scheduled / 2) {
      findings.push({ kind: 'buffered', detail: `${arrivalsMs.length} events sent over ${scheduled} ms arrived within ${Math.round(spread)} ms (first after ${Math.round(arrivalsMs[0]!)} ms)`, fix: BUFFERING_FIX });
    }
  }
  const first = arrivalsMs[0];
  if (first !== undefined && first > Math.max(1000, 5 * intervalMs) && !findings.some((f) => f.kind === 'buffered')) {
    findings.push({ kind: 'delayed', detail: `the first probe event arrived ${Math.round(first)} ms after the request (sent at once)`, fix: BUFFERING_FIX });
  }
  return { ok: findings.length === 0, findings, headersMs, arrivalsMs, expected: count, intervalMs, headers, ...(idle === undefined ? {} : { idle }) };
}

/** The idle phase a hub announced (`probe-idle`); zeros when its data is not the expected JSON. */
function idlePhaseOf(data: string): { heartbeatIntervalMs: number; silentForMs: number } {
  try {
    const { heartbeatIntervalMs, silentForMs } = JSON.parse(data) as { heartbeatIntervalMs?: unknown; silentForMs?: unknown };
    if (typeof heartbeatIntervalMs === 'number' && typeof silentForMs === 'number') return { heartbeatIntervalMs, silentForMs };
  } catch {
    // Not JSON: report the phase without its figures rather than abandon the measurement.
  }
  return { heartbeatIntervalMs: 0, silentForMs: 0 };
}
