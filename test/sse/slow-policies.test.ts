/**
 * The slow-consumer policies a subscriber chooses with `?slow=` (default
 * `--slow-consumer-policy`). A raw-socket subscriber stops reading while megabytes are
 * published, so its kernel buffers fill and the hub's own backlog for it grows; then it reads
 * everything, and the test checks what arrived, in which order, and that the hub held no more
 * than `--max-backlog` for it meanwhile (the `sse_relay_subscriber_backlog_peak_bytes` gauge).
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { createParser } from 'eventsource-parser';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, openStream, post } from '../helpers/sse-client.js';

const MAX_BACKLOG = 64 * 1024;

interface Parsed {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** A subscriber over a raw socket, whose reading the test pauses and resumes. */
class RawSubscriber {
  private bytes = Buffer.alloc(0);
  closed = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => (this.bytes = Buffer.concat([this.bytes, chunk])));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async open(hub: TestHub, path: string): Promise<RawSubscriber> {
    const { port } = new URL(hub.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const subscriber = new RawSubscriber(socket);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    await eventually(() => subscriber.body().length > 0, 5000, 'the stream to open');
    return subscriber;
  }

  head(): string {
    const end = this.bytes.indexOf('\r\n\r\n');
    return end < 0 ? '' : this.bytes.subarray(0, end).toString('latin1');
  }

  /** The response body so far, de-chunked (complete chunks only). */
  body(): string {
    const start = this.bytes.indexOf('\r\n\r\n');
    if (start < 0) return '';
    const parts: Buffer[] = [];
    let at = start + 4;
    for (;;) {
      const lineEnd = this.bytes.indexOf('\r\n', at);
      if (lineEnd < 0) break;
      const size = parseInt(this.bytes.subarray(at, lineEnd).toString('latin1'), 16);
      if (size === 0 || lineEnd + 2 + size + 2 > this.bytes.length) break;
      parts.push(this.bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    return Buffer.concat(parts).toString('utf8');
  }

  events(): Parsed[] {
    const events: Parsed[] = [];
    const parser = createParser({ onEvent: (e) => events.push({ id: e.id, event: e.event, data: e.data }) });
    parser.feed(this.body());
    return events;
  }
}

async function metric(hub: TestHub, name: string): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

async function publishJson(hub: TestHub, topic: string, body: Record<string, string>): Promise<string> {
  const res = await post(`${hub.url}/messages/${topic}`, JSON.stringify(body), { 'content-type': 'application/json' });
  assert.equal(res.status, 200, res.text);
  return res.json.id as string;
}

describe('slow-consumer policies (?slow=)', () => {
  it('skip: a stalled subscriber gets one gap event naming the skipped ids, then the rest in order, and stays open', async (t) => {
    const hub = await startHub({ store: 'memory', maxBacklog: MAX_BACKLOG });
    t.after(() => hub.close());
    const subscriber = await RawSubscriber.open(hub, '/messages/subscribe/s?slow=skip');
    t.after(() => subscriber.socket.destroy());
    await eventually(() => subscriber.events().length === 1, 5000, 'the greeting');
    subscriber.socket.pause();

    // At least 2 MB; more until the hub had to skip (the kernel's buffers absorb a few MB first).
    const payload = 'z'.repeat(16 * 1024);
    const ids: string[] = [];
    let published = 0;
    // (The metric is read once per 32 publishes: a scrape costs more than a publish.)
    while (published < 2 * 1024 * 1024 || ids.length % 32 !== 0 || ((await metric(hub, 'sse_relay_messages_skipped_total')) === 0 && published < 64 * 1024 * 1024)) {
      ids.push(await publishJson(hub, 's', { message: `${ids.length} ${payload}` }));
      published += payload.length;
    }
    console.log(`skip: ${ids.length} messages (${(published / 1048576).toFixed(1)} MiB) published while stalled`);
    // A tail published while still behind: it must arrive after the gap notice.
    for (let i = 0; i < 3; i++) ids.push(await publishJson(hub, 's', { message: `${ids.length} ${payload}` }));
    assert.equal(hub.hub.subscriberCount('s'), 1, 'still subscribed');

    subscriber.socket.resume();
    const last = ids[ids.length - 1]!;
    await eventually(() => subscriber.events().some((e) => e.id === last), 20_000, 'the last message');
    const events = subscriber.events().slice(1);
    const received = events.filter((e) => e.event === undefined).map((e) => e.id!);
    const gaps = events.filter((e) => e.event === 'gap');
    assert.ok(gaps.length >= 1, 'a gap event');
    // Every message either arrived or is named by the gap event that stands in its place.
    let expected = 0;
    let skipped = 0;
    for (const event of events) {
      if (event.event === 'gap') {
        const gap = JSON.parse(event.data) as { reason: string; firstId: string; lastId: string; count: number };
        assert.equal(gap.reason, 'slow-consumer');
        assert.equal(gap.firstId, ids[expected], 'the gap starts at the first message not received');
        assert.equal(gap.lastId, ids[expected + gap.count - 1], 'and ends count messages later');
        expected += gap.count;
        skipped += gap.count;
      } else {
        assert.equal(event.id, ids[expected], 'messages in order, none missing outside a gap');
        assert.ok(event.data.startsWith(`${expected} `));
        expected++;
      }
    }
    assert.equal(expected, ids.length);
    assert.equal(received.length + skipped, ids.length);
    assert.equal(await metric(hub, 'sse_relay_messages_skipped_total'), skipped);
    const peak = await metric(hub, 'sse_relay_subscriber_backlog_peak_bytes');
    assert.ok(peak <= MAX_BACKLOG, `the hub held at most --max-backlog (peak ${peak})`);
    assert.ok(peak > MAX_BACKLOG / 2, `the backlog did fill (peak ${peak})`);

    // Still open and live; and the skipped ones can be replayed with Last-Event-ID.
    const after = await publishJson(hub, 's', { message: 'after' });
    await eventually(() => subscriber.events().some((e) => e.id === after), 5000, 'a message after the gap');
    assert.equal(subscriber.closed, false);
    const firstGap = JSON.parse(gaps[0]!.data) as { firstId: string; count: number };
    const before = ids[ids.indexOf(firstGap.firstId) - 1]!;
    const replay = await openStream(`${hub.url}/messages/subscribe/s`, { 'Last-Event-ID': before });
    t.after(() => replay.close());
    await replay.waitFor((events) => events.some((e) => e.id === firstGap.firstId), 5000);
    assert.equal(replay.events[1]!.id, firstGap.firstId, 'replay starts with the first skipped message');
  });

  it('latest: a stalled subscriber gets the last value of every key, in order, and nothing is skipped', async (t) => {
    const hub = await startHub({ store: 'memory', maxBacklog: MAX_BACKLOG });
    t.after(() => hub.close());
    const subscriber = await RawSubscriber.open(hub, '/messages/subscribe/prices?slow=latest');
    t.after(() => subscriber.socket.destroy());
    await eventually(() => subscriber.events().length === 1, 5000, 'the greeting');
    subscriber.socket.pause();

    // 16 keys of 2 KiB: their newest values fit the backlog, so conflation alone keeps up.
    const keys = Array.from({ length: 16 }, (_, i) => `k${i}`);
    const payload = 'p'.repeat(2 * 1024);
    const lastOf = new Map<string, string>();
    let published = 0;
    let n = 0;
    while (published < 2 * 1024 * 1024 || n % 256 !== 0 || ((await metric(hub, 'sse_relay_messages_conflated_total')) === 0 && published < 64 * 1024 * 1024)) {
      const key = keys[n % keys.length]!;
      const data = `${key} ${n} ${payload}`;
      // Half by JSON, half by form, both carrying `key`.
      if (n % 2 === 0) await publishJson(hub, 'prices', { message: data, key });
      else assert.equal((await post(`${hub.url}/messages/prices`, new URLSearchParams({ message: data, key }).toString(), { 'content-type': 'application/x-www-form-urlencoded' })).status, 200);
      lastOf.set(key, data);
      published += payload.length;
      n++;
    }
    console.log(`latest: ${n} messages (${(published / 1048576).toFixed(1)} MiB) published while stalled`);
    subscriber.socket.resume();
    const final = [...lastOf.values()];
    await eventually(() => {
      const datas = new Set(subscriber.events().map((e) => e.data));
      return final.every((d) => datas.has(d));
    }, 20_000, 'the last value of every key');
    const events = subscriber.events().slice(1);
    assert.equal(events.filter((e) => e.event === 'gap').length, 0, 'no gap: conflation kept it under the limit');
    const seqs = events.map((e) => Number(e.id));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'ids in order');
    // The last event seen for each key is its last published value.
    for (const key of keys) {
      const mine = events.filter((e) => e.data.startsWith(`${key} `));
      assert.equal(mine[mine.length - 1]!.data, lastOf.get(key));
    }
    const conflated = await metric(hub, 'sse_relay_messages_conflated_total');
    assert.ok(conflated > 0);
    assert.equal(events.length + conflated, n, 'every message either arrived or was replaced by a newer one of its key');
    const peak = await metric(hub, 'sse_relay_subscriber_backlog_peak_bytes');
    assert.ok(peak <= MAX_BACKLOG, `the hub held at most --max-backlog (peak ${peak})`);
    assert.equal(subscriber.closed, false);
  });

  it('disconnect (and the default): a stalled subscriber is cut off as a slow consumer', async (t) => {
    const hub = await startHub({ store: 'memory', maxBacklog: MAX_BACKLOG });
    t.after(() => hub.close());
    for (const path of ['/messages/subscribe/d?slow=disconnect', '/messages/subscribe/d']) {
      const subscriber = await RawSubscriber.open(hub, path);
      t.after(() => subscriber.socket.destroy());
      await eventually(() => subscriber.events().length === 1, 5000, 'the greeting');
      subscriber.socket.pause();
      const payload = 'z'.repeat(32 * 1024);
      for (let i = 0; i < 2000 && hub.hub.subscriberCount('d') === 1; i++) await publishJson(hub, 'd', { message: payload });
      assert.equal(hub.hub.subscriberCount('d'), 0, `${path}: evicted`);
      subscriber.socket.resume();
      await eventually(() => subscriber.body().endsWith(': closed: slow consumer\n\n'), 10_000, 'the eviction notice');
      assert.equal(subscriber.events().filter((e) => e.event === 'gap').length, 0);
    }
  });

  it('--slow-consumer-policy sets the default; ?slow= overrides it', async (t) => {
    const hub = await startHub({ store: 'memory', maxBacklog: MAX_BACKLOG, slowConsumerPolicy: 'skip' });
    t.after(() => hub.close());
    const skipping = await RawSubscriber.open(hub, '/messages/subscribe/x');
    const cut = await RawSubscriber.open(hub, '/messages/subscribe/x?slow=disconnect');
    t.after(() => skipping.socket.destroy());
    t.after(() => cut.socket.destroy());
    await eventually(() => skipping.events().length === 1 && cut.events().length === 1, 5000, 'the greetings');
    skipping.socket.pause();
    cut.socket.pause();
    const payload = 'z'.repeat(32 * 1024);
    for (let i = 0; i < 2000 && hub.hub.subscriberCount('x') === 2; i++) await publishJson(hub, 'x', { message: payload });
    assert.equal(hub.hub.subscriberCount('x'), 1, 'only the disconnect subscriber was evicted');
    for (let i = 0; i < 2000 && (await metric(hub, 'sse_relay_messages_skipped_total')) === 0; i++) await publishJson(hub, 'x', { message: payload });
    assert.equal(hub.hub.subscriberCount('x'), 1, 'the skip subscriber is still there');
  });

  it('an invalid ?slow= is refused with 400 HUB_ERR_SLOW_POLICY_INVALID on both APIs', async (t) => {
    const hub = await startHub({ store: 'memory', anonymous: true });
    t.after(() => hub.close());
    for (const query of ['slow=fast', 'slow=skip&slow=latest', 'slow=']) {
      const res = await fetch(`${hub.url}/messages/subscribe/a?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'HUB_ERR_SLOW_POLICY_INVALID');
      const mercure = await fetch(`${hub.url}/.well-known/mercure?topic=a&${query}`);
      assert.equal(mercure.status, 400, `mercure ${query}`);
      assert.match(await mercure.text(), /slow= must be one of disconnect, skip, latest/);
    }
    const ok = await fetch(`${hub.url}/.well-known/mercure?topic=a&slow=latest`);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  });
});
