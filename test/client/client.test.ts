import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { publish, RelayClientError, subscribe, type RelayEvent, type Subscription } from '../../src/client/index.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { closedPort } from '../helpers/ports.js';

const TIMEOUT_MS = 10_000;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Rejects if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pulls `count` events from an iterator, with a deadline (without their `publishedAt`). */
async function take(iterator: AsyncIterator<RelayEvent>, count: number): Promise<RelayEvent[]> {
  const events: RelayEvent[] = [];
  while (events.length < count) {
    const result = await within(iterator.next(), `event ${events.length + 1} of ${count}`);
    assert.equal(result.done, false, `the iterator ended after ${events.length} of ${count} events`);
    // The publish time is checked in published-at.test.ts; here events compare by their fields.
    const { publishedAt: _publishedAt, ...fields } = result.value;
    events.push(fields);
  }
  return events;
}

/** Polls `predicate` on every event-loop turn until it holds, with a deadline. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A subscription whose first `onOpen` resolves `opened` (the hub has registered it by then). */
function open(options: Parameters<typeof subscribe>[0]): { subscription: Subscription; opened: Promise<void> } {
  const opened = deferred();
  const onOpen = options.onOpen;
  const subscription = subscribe({
    ...options,
    onOpen: (info) => {
      onOpen?.(info);
      opened.resolve();
    },
  });
  return { subscription, opened: within(opened.promise, `the stream of ${options.id} to open`) };
}

describe('client SDK against a real hub', () => {
  let hub: TestHub;
  const subscriptions: Subscription[] = [];
  const track = <T extends { subscription: Subscription }>(value: T): T => {
    subscriptions.push(value.subscription);
    return value;
  };

  before(async () => {
    hub = await startHub({ store: 'memory', retry: 50 });
  });
  after(async () => {
    for (const subscription of subscriptions) subscription.close();
    await hub.close();
  });

  test('async iterator: publish round trip with ids and event types', async () => {
    const { subscription, opened } = track(open({ url: hub.url, id: 'round-trip' }));
    await opened;
    const first = await publish({ url: hub.url, id: 'round-trip', message: 'hello' });
    const second = await publish({ url: hub.url, id: 'round-trip', message: 'typed', event: 'note' });
    const third = await publish({ url: hub.url, id: 'round-trip', message: 'world' });

    const iterator = subscription[Symbol.asyncIterator]();
    const events = await take(iterator, 3);
    assert.deepEqual(events, [
      { id: first.id, event: 'message', data: 'hello' },
      { id: second.id, event: 'note', data: 'typed' },
      { id: third.id, event: 'message', data: 'world' },
    ]);
    assert.equal(subscription.lastEventId, third.id);
    subscription.close();
    assert.deepEqual(await within(iterator.next(), 'the end of iteration'), { done: true, value: undefined });
  });

  test('shareAcrossTabs where Web Locks are missing (Node): its own connection, events as usual', async () => {
    assert.equal((globalThis as { navigator?: { locks?: unknown } }).navigator?.locks, undefined);
    const { subscription, opened } = track(open({ url: hub.url, id: 'shared-in-node', shareAcrossTabs: true }));
    await opened;
    const sent = await publish({ url: hub.url, id: 'shared-in-node', message: 'alone' });
    const events = await take(subscription[Symbol.asyncIterator](), 1);
    assert.deepEqual(events, [{ id: sent.id, event: 'message', data: 'alone' }]);
    const stats = (await (await fetch(`${hub.url}/messages/shared-in-node`)).json()) as { subscribers: number };
    assert.equal(stats.subscribers, 1);
  });

  test('for await ... break closes the subscription', async () => {
    const { subscription, opened } = track(open({ url: hub.url, id: 'break' }));
    await opened;
    await publish({ url: hub.url, id: 'break', message: 'one' });
    let seen: RelayEvent | undefined;
    for await (const event of subscription) {
      seen = event;
      break;
    }
    assert.equal(seen?.data, 'one');
    assert.equal(subscription.closed, true);
  });

  test('callbacks: onOpen, then onMessage for each event', async () => {
    const received: RelayEvent[] = [];
    const opens: boolean[] = [];
    const { opened } = track(
      open({
        url: hub.url,
        id: 'callbacks',
        onOpen: ({ reconnect }) => opens.push(reconnect),
        onMessage: (event) => received.push(event),
      }),
    );
    await opened;
    const ids: string[] = [];
    for (const message of ['a', 'b', 'c']) ids.push((await publish({ url: hub.url, id: 'callbacks', message })).id);
    await until(() => received.length === 3, 'three callbacks');
    assert.deepEqual(
      received.map((event) => [event.id, event.data]),
      ids.map((id, i) => [id, ['a', 'b', 'c'][i]]),
    );
    assert.deepEqual(opens, [false]);
  });

  test('two subscribers receive the same events with the same ids', async () => {
    const one = track(open({ url: hub.url, id: 'fan-out' }));
    const two = track(open({ url: hub.url, id: 'fan-out' }));
    await Promise.all([one.opened, two.opened]);
    const { id } = await publish({ url: hub.url, id: 'fan-out', message: 'to both' });
    const [a] = await take(one.subscription[Symbol.asyncIterator](), 1);
    const [b] = await take(two.subscription[Symbol.asyncIterator](), 1);
    assert.deepEqual(a, { id, event: 'message', data: 'to both' });
    assert.deepEqual(b, a);
  });

  test('multi-line and unicode data round-trip exactly', async () => {
    const messages = [
      'line 1\nline 2\n\nline 4',
      'trailing newline\n',
      '\nleading newline',
      ' leading space',
      'emoji 😀 family 👩‍👩‍👧 flag 🇫🇷',
      'line\u2028separator\u2029paragraph\u0085next-line',
      'astral 𝄞 𐍈 \u{1F9EC} \u{10FFFD}',
      'data: not a field\nid: 666\nevent: nope\n: not a comment',
      // ~210 kB: split across network chunks, inside multi-byte sequences. (A frame larger than
      // the hub's maxBacklog, 256 KiB by default, is never delivered: see the report.)
      'é😀'.repeat(35_000),
    ];
    const { subscription, opened } = track(open({ url: hub.url, id: 'unicode ✓' }));
    await opened;
    for (const message of messages) await publish({ url: hub.url, id: 'unicode ✓', message });
    const events = await take(subscription[Symbol.asyncIterator](), messages.length);
    assert.deepEqual(
      events.map((event) => event.data),
      messages,
    );
    assert.ok(events.every((event) => event.event === 'message' && event.id !== undefined));
  });

  test('CR and CRLF line breaks arrive as LF (the SSE wire format has no other)', async () => {
    const { subscription, opened } = track(open({ url: hub.url, id: 'line-breaks' }));
    await opened;
    await publish({ url: hub.url, id: 'line-breaks', message: 'a\r\nb\rc\nd' });
    const [event] = await take(subscription[Symbol.asyncIterator](), 1);
    assert.equal(event?.data, 'a\nb\nc\nd');
  });

  test('ids with reserved URL characters are percent-encoded', async () => {
    const id = 'a/b?c=d#e f%20😀';
    const { subscription, opened } = track(open({ url: `${hub.url}/`, id }));
    await opened;
    const { id: eventId } = await publish({ url: hub.url, id, message: 'reserved' });
    const [event] = await take(subscription[Symbol.asyncIterator](), 1);
    assert.deepEqual(event, { id: eventId, event: 'message', data: 'reserved' });
  });

  test('streamUrl reads another stream of the hub, resolved against url', async () => {
    const ids: string[] = [];
    for (const message of ['r1', 'r2']) ids.push((await publish({ url: hub.url, id: 'stream-url', message })).id);
    const subscription = subscribe({ url: hub.url, streamUrl: '/messages/subscribe/stream-url?lastEventId=earliest' });
    subscriptions.push(subscription);
    const events = await take(subscription[Symbol.asyncIterator](), 2);
    assert.deepEqual(
      events.map((event) => [event.id, event.data]),
      [
        [ids[0], 'r1'],
        [ids[1], 'r2'],
      ],
    );
  });

  test('events that arrive before they are consumed are buffered, none lost, in order', async () => {
    // maxBufferedEvents: 4 makes the subscription stop reading the socket while the queue is full.
    const { subscription, opened } = track(open({ url: hub.url, id: 'buffered', maxBufferedEvents: 4 }));
    await opened;
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push((await publish({ url: hub.url, id: 'buffered', message: `m${i}` })).id);
    const events = await take(subscription[Symbol.asyncIterator](), 50);
    assert.deepEqual(
      events.map((event) => [event.id, event.data]),
      ids.map((id, i) => [id, `m${i}`]),
    );
  });

  test('aborting the signal ends iteration cleanly, also while a next() is pending', async () => {
    const controller = new AbortController();
    const { subscription, opened } = track(open({ url: hub.url, id: 'abort', signal: controller.signal }));
    await opened;
    const iterator = subscription[Symbol.asyncIterator]();
    const pending = iterator.next();
    controller.abort();
    assert.deepEqual(await within(pending, 'the pending next() to settle'), { done: true, value: undefined });
    assert.deepEqual(await iterator.next(), { done: true, value: undefined });
    assert.equal(subscription.closed, true);
  });

  test('an already aborted signal never connects', async () => {
    let requests = 0;
    const subscription = subscribe({
      url: hub.url,
      id: 'pre-aborted',
      signal: AbortSignal.abort(),
      fetch: (input, init) => {
        requests++;
        return fetch(input, init);
      },
    });
    assert.deepEqual(await subscription[Symbol.asyncIterator]().next(), { done: true, value: undefined });
    assert.equal(requests, 0);
  });

  test('close() during a reconnection wait ends iteration without an error', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const retried = deferred<RelayClientError>();
    const subscription = subscribe({
      url,
      id: 'unreachable',
      reconnect: { initialDelayMs: 60_000 },
      onRetry: ({ error }) => retried.resolve(error),
    });
    subscriptions.push(subscription);
    const iterator = subscription[Symbol.asyncIterator]();
    const pending = iterator.next();
    const error = await within(retried.promise, 'the first retry');
    assert.equal(error.code, 'CLIENT_ERR_UNREACHABLE');
    subscription.close();
    assert.deepEqual(await within(pending, 'the end of iteration'), { done: true, value: undefined });
  });

  test('a 4xx answer is fatal: the iterator throws and onError gets a RelayClientError', async () => {
    const errors: RelayClientError[] = [];
    const subscription = subscribe({ url: hub.url, id: 'x'.repeat(300), onError: (error) => errors.push(error) });
    subscriptions.push(subscription);
    await assert.rejects(
      within(subscription[Symbol.asyncIterator]().next(), 'the error'),
      (error: unknown) => {
        assert.ok(error instanceof RelayClientError);
        assert.equal(error.code, 'HUB_ERR_TOPIC_INVALID');
        assert.equal(error.status, 400);
        assert.match(error.message, /256/);
        return true;
      },
    );
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, 'HUB_ERR_TOPIC_INVALID');
    assert.equal(subscription.closed, true);
  });

  test('publish errors carry the hub code and status', async () => {
    await assert.rejects(publish({ url: hub.url, id: 'x'.repeat(300), message: 'm' }), {
      name: 'RelayClientError',
      code: 'HUB_ERR_TOPIC_INVALID',
      status: 400,
    });
    await assert.rejects(publish({ url: hub.url, id: 'empty', message: '' }), {
      code: 'HUB_ERR_MESSAGE_MISSING',
      status: 400,
    });
    await assert.rejects(publish({ url: hub.url, id: 'bad-type', message: 'm', event: 'a\nb' }), {
      code: 'HUB_ERR_EVENT_TYPE_INVALID',
      status: 400,
    });
  });

  test('publish to an unreachable hub rejects with CLIENT_ERR_UNREACHABLE', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    await assert.rejects(publish({ url, id: 'demo', message: 'm' }), (error: unknown) => {
      assert.ok(error instanceof RelayClientError);
      assert.equal(error.code, 'CLIENT_ERR_UNREACHABLE');
      assert.equal(error.status, undefined);
      assert.match(error.message, new RegExp(`Cannot reach the hub at ${url.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
      return true;
    });
  });

  test('with reconnect: false, a network error ends the subscription with that error', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const subscription = subscribe({ url, id: 'demo', reconnect: false });
    subscriptions.push(subscription);
    await assert.rejects(within(subscription[Symbol.asyncIterator]().next(), 'the error'), {
      code: 'CLIENT_ERR_UNREACHABLE',
    });
  });

  test('invalid options throw at once', () => {
    assert.throws(() => subscribe({ url: 'not a url', id: 'demo' }), { code: 'CLIENT_ERR_INVALID_OPTIONS' });
    assert.throws(() => subscribe({ url: hub.url, id: '' }), { code: 'CLIENT_ERR_INVALID_OPTIONS' });
  });
});

describe('client SDK reconnection', () => {
  /** A fetch that records each request's Last-Event-ID and holds reconnections until released. */
  function gatedFetch(): { fetch: typeof fetch; lastEventIds: (string | null)[]; release(): void } {
    const lastEventIds: (string | null)[] = [];
    const gate = deferred();
    return {
      lastEventIds,
      release: () => gate.resolve(),
      fetch: async (input, init) => {
        lastEventIds.push(new Headers(init?.headers).get('last-event-id'));
        if (lastEventIds.length > 1) await gate.promise;
        return fetch(input, init);
      },
    };
  }

  test('after the hub drops the connection, it resumes with Last-Event-ID and misses nothing', async (t) => {
    const hub = await startHub({ store: 'memory', retry: 20 });
    t.after(() => hub.close());
    const gate = gatedFetch();
    t.after(() => gate.release());
    const retried = deferred<RelayClientError>();
    const opens: { reconnect: boolean; lastEventId: string | undefined }[] = [];
    const { subscription, opened } = open({
      url: hub.url,
      id: 'drop',
      fetch: gate.fetch,
      onOpen: (info) => opens.push(info),
      onRetry: ({ error, everOpened }) => {
        if (everOpened) retried.resolve(error);
      },
    });
    t.after(() => subscription.close());
    await opened;
    const iterator = subscription[Symbol.asyncIterator]();
    const before: string[] = [];
    for (const message of ['m1', 'm2', 'm3']) before.push((await publish({ url: hub.url, id: 'drop', message })).id);
    assert.deepEqual((await take(iterator, 3)).map((event) => event.id), before);

    hub.app.server.closeAllConnections();
    const error = await within(retried.promise, 'the client to notice the drop');
    assert.equal(error.code, 'CLIENT_ERR_STREAM_LOST');

    // Published while the client is away: only a correct Last-Event-ID brings them back.
    const during: string[] = [];
    for (const message of ['m4', 'm5']) during.push((await publish({ url: hub.url, id: 'drop', message })).id);
    gate.release();
    const resumed = await take(iterator, 2);
    assert.deepEqual(
      resumed.map((event) => [event.id, event.data]),
      [
        [during[0], 'm4'],
        [during[1], 'm5'],
      ],
    );
    assert.deepEqual(gate.lastEventIds.slice(0, 2), [null, before[2]]);
    assert.deepEqual(opens, [
      { reconnect: false, lastEventId: undefined },
      { reconnect: true, lastEventId: before[2] },
    ]);
    assert.equal(subscription.lastEventId, during[1]);
  });

  test('survives a hub restart on the same port (SQLite store), retrying while it is down', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sse-relay-client-test-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    const first = await startHub({ dataDir, retry: 20 });
    const port = Number(new URL(first.url).port);
    const gate = gatedFetch();
    t.after(() => gate.release());
    const { subscription, opened } = open({ url: first.url, id: 'restart', fetch: gate.fetch });
    t.after(() => subscription.close());
    await opened;
    const iterator = subscription[Symbol.asyncIterator]();
    const { id: beforeId } = await publish({ url: first.url, id: 'restart', message: 'before' });
    assert.equal((await take(iterator, 1))[0]?.id, beforeId);

    await first.close();
    const second = await startHub({ dataDir, port, retry: 20 });
    t.after(() => second.close());
    const { id: afterId } = await publish({ url: second.url, id: 'restart', message: 'after' });
    gate.release();
    const [event] = await take(iterator, 1);
    assert.deepEqual(event, { id: afterId, event: 'message', data: 'after' });
    assert.equal(gate.lastEventIds[1], beforeId);
  });
});
