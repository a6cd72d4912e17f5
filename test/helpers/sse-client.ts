import { request, type IncomingHttpHeaders } from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One event as an independent SSE parser (eventsource-parser) sees it. */
export interface ReceivedEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** A raw `text/event-stream` reader over node:http, for asserting what a client receives. */
export interface TestStream {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Events parsed so far, greeting included. */
  readonly events: ReceivedEvent[];
  /** Every byte received, as text. */
  readonly raw: () => string;
  readonly comments: string[];
  readonly retries: number[];
  /**
   * The last event id as a standard `EventSource` holds it: set by every frame with an `id:`,
   * including one without data (which eventsource-parser drops, so `events` cannot tell).
   */
  lastEventId(): string | undefined;
  /** Resolves once the server ended the response (or the socket closed). */
  readonly ended: Promise<void>;
  /** Waits until `predicate(events)` holds, failing after `timeoutMs`. */
  waitFor(predicate: (events: ReceivedEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Waits until at least `count` events (greeting included) arrived. */
  waitForCount(count: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Replays the standard's `id` field rule over complete frames of `raw` (LF line ends, as the hub writes). */
export function lastEventIdOf(raw: string): string | undefined {
  let lastEventId: string | undefined;
  const complete = raw.slice(0, raw.lastIndexOf('\n\n') + 1);
  for (const line of complete.split('\n')) {
    const match = /^id(?::[ ]?(.*))?$/.exec(line);
    if (match && !(match[1] ?? '').includes('\u0000')) lastEventId = match[1] ?? '';
  }
  return lastEventId;
}

/** True for the first event of a `/messages/subscribe` stream. */
export const isGreeting = (event: { readonly event?: string | undefined; readonly data: string }): boolean => event.event === undefined && event.data.startsWith('Subscribed to id ');

/** True for an event that carries a published message (it has an id and is not the greeting). */
export const isMessage = <E extends { readonly id?: string | undefined; readonly event?: string | undefined; readonly data: string }>(
  event: E,
): event is E & { readonly id: string } => event.id !== undefined && !isGreeting(event);

/**
 * Opens a stream and resolves once the response headers arrived. `init` sends another method
 * and a body (a Mercure `QUERY` subscription).
 */
export function openStream(url: string, headers: Record<string, string> = {}, init: { method?: string; body?: string } = {}): Promise<TestStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      const events: ReceivedEvent[] = [];
      const comments: string[] = [];
      const retries: number[] = [];
      const chunks: Buffer[] = [];
      const waiters = new Set<() => void>();
      let done = false;
      const parser = createParser({
        onEvent: (e: EventSourceMessage) => {
          events.push({ id: e.id, event: e.event, data: e.data });
          for (const w of waiters) w();
        },
        onComment: (c: string) => comments.push(c),
        onRetry: (r: number) => retries.push(r),
      });
      // One decoder for the whole stream: a character split across two reads stays whole.
      const decoder = new TextDecoder('utf-8');
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        parser.feed(decoder.decode(chunk, { stream: true }));
      });
      const ended = new Promise<void>((resolveEnd) => {
        const finish = (): void => {
          done = true;
          for (const w of waiters) w();
          resolveEnd();
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      });
      const waitFor = (predicate: (e: ReceivedEvent[]) => boolean, timeoutMs = 10_000): Promise<void> =>
        new Promise((ok, fail) => {
          if (predicate(events)) return ok();
          const timer = setTimeout(() => {
            waiters.delete(check);
            fail(new Error(`timed out after ${timeoutMs} ms with ${events.length} events: ${JSON.stringify(events.slice(-3))}`));
          }, timeoutMs);
          const check = (): void => {
            if (predicate(events)) {
              clearTimeout(timer);
              waiters.delete(check);
              ok();
            } else if (done) {
              clearTimeout(timer);
              waiters.delete(check);
              fail(new Error(`stream ended with ${events.length} events: ${JSON.stringify(events.slice(-3))}`));
            }
          };
          waiters.add(check);
        });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        comments,
        retries,
        raw: () => Buffer.concat(chunks).toString('utf8'),
        lastEventId: () => lastEventIdOf(Buffer.concat(chunks).toString('utf8')),
        ended,
        waitFor,
        waitForCount: (count, timeoutMs) => waitFor((e) => e.length >= count, timeoutMs),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** POSTs and returns status and parsed JSON (or text). */
export async function post(
  url: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', body, headers });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** Publishes `message` to topic `id` with a JSON body and returns the event id. */
export async function publish(baseUrl: string, id: string, message: string, event?: string): Promise<string> {
  const res = await post(`${baseUrl}/messages/${encodeURIComponent(id)}`, JSON.stringify({ message, event }), {
    'content-type': 'application/json',
  });
  if (res.status !== 200) throw new Error(`publish failed: ${res.status} ${res.text}`);
  return res.json.id as string;
}

/** Polls `check` until it is true, failing after `timeoutMs` (for states with no event to await). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
