import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { isGreeting, openStream, publish, type ReceivedEvent } from '../helpers/sse-client.js';

const subscribeUrl = (hub: TestHub, topic: string, query = ''): string =>
  `${hub.url}/messages/subscribe/${encodeURIComponent(topic)}${query}`;

/** Data of the message events (greeting and gap events left out). */
const messages = (events: ReceivedEvent[]): string[] =>
  events.filter((e) => !isGreeting(e) && e.event !== 'gap').map((e) => e.data);

describe('history and resume', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ retentionCount: 1000 });
  });
  after(() => hub.close());

  it('resumes after a dropped connection with what was published in the gap', async () => {
    const first = await openStream(subscribeUrl(hub, 'resume'));
    await first.waitForCount(1);
    await publish(hub.url, 'resume', 'before 1');
    const lastSeen = await publish(hub.url, 'resume', 'before 2');
    await first.waitForCount(3);
    first.close();
    await publish(hub.url, 'resume', 'gap 1');
    await publish(hub.url, 'resume', 'gap 2');

    const second = await openStream(subscribeUrl(hub, 'resume'), { 'Last-Event-ID': lastSeen });
    try {
      assert.equal(second.headers['replay-gap'], undefined);
      await second.waitForCount(3);
      await publish(hub.url, 'resume', 'live');
      await second.waitForCount(4);
      assert.equal(second.events[0]!.data, 'Subscribed to id resume');
      assert.deepEqual(messages(second.events), ['gap 1', 'gap 2', 'live']);
    } finally {
      second.close();
    }
  });

  it('takes ?lastEventId= and lets the Last-Event-ID header win', async () => {
    const a = await publish(hub.url, 'cursor', 'a');
    const b = await publish(hub.url, 'cursor', 'b');
    await publish(hub.url, 'cursor', 'c');
    const byQuery = await openStream(subscribeUrl(hub, 'cursor', `?lastEventId=${a}`));
    const both = await openStream(subscribeUrl(hub, 'cursor', `?lastEventId=${a}`), { 'Last-Event-ID': b });
    try {
      await byQuery.waitForCount(3);
      await both.waitForCount(2);
      assert.deepEqual(messages(byQuery.events), ['b', 'c']);
      assert.deepEqual(messages(both.events), ['c']);
    } finally {
      byQuery.close();
      both.close();
    }
  });

  it('keeps messages posted while nobody listens and replays them with earliest', async () => {
    await publish(hub.url, 'inbox', 'while away 1');
    await publish(hub.url, 'inbox', 'while away 2');
    const stream = await openStream(subscribeUrl(hub, 'inbox', '?lastEventId=earliest'));
    try {
      await stream.waitForCount(3);
      assert.deepEqual(messages(stream.events), ['while away 1', 'while away 2']);
      assert.equal(stream.headers['replay-gap'], undefined);
    } finally {
      stream.close();
    }
  });

  it('sends only live messages when the client gives no cursor', async () => {
    await publish(hub.url, 'live-only', 'old');
    const stream = await openStream(subscribeUrl(hub, 'live-only'));
    try {
      await stream.waitForCount(1);
      await publish(hub.url, 'live-only', 'new');
      await stream.waitForCount(2);
      assert.deepEqual(messages(stream.events), ['new']);
    } finally {
      stream.close();
    }
  });

  it('signals a gap (header and first event) for an unknown id and replays from the oldest', async () => {
    await publish(hub.url, 'unknown-cursor', 'x');
    await publish(hub.url, 'unknown-cursor', 'y');
    for (const cursor of ['not-an-id', '999999999999999', 'a'.repeat(5000)]) {
      const stream = await openStream(subscribeUrl(hub, 'unknown-cursor'), { 'Last-Event-ID': cursor });
      try {
        assert.equal(stream.headers['replay-gap'], 'true');
        await stream.waitForCount(4);
        assert.equal(stream.events[1]!.event, 'gap');
        assert.equal(stream.events[1]!.id, undefined, 'the gap event does not move the cursor');
        assert.deepEqual(messages(stream.events), ['x', 'y']);
      } finally {
        stream.close();
      }
    }
  });

  it('replays exactly, with no gap and no duplicate, while publishing continues', async () => {
    const topic = 'race';
    const published: { id: string; data: string }[] = [];
    let publishing = true;
    // Four concurrent publishers keep the store busy during every replay below.
    const publishers = Array.from({ length: 4 }, async (_, p) => {
      for (let i = 0; publishing && i < 2000; i++) {
        const data = `p${p}-${i}`;
        published.push({ id: await publish(hub.url, topic, data), data });
      }
    });
    const streams = [];
    for (let k = 0; k < 8; k++) {
      while (published.length < (k + 1) * 150) await new Promise((r) => setTimeout(r, 5));
      const cursor = [...published].sort((a, b) => Number(a.id) - Number(b.id))[k * 100]!.id;
      streams.push({ cursor, stream: await openStream(subscribeUrl(hub, topic), { 'Last-Event-ID': cursor }) });
    }
    publishing = false;
    await Promise.all(publishers);
    const all = [...published].sort((a, b) => Number(a.id) - Number(b.id));
    const lastId = all.at(-1)!.id;
    for (const { cursor, stream } of streams) {
      await stream.waitFor((events) => events.at(-1)?.id === lastId, 20_000);
      const expected = all.filter((m) => Number(m.id) > Number(cursor)).map((m) => `${m.id}:${m.data}`);
      const received = stream.events.filter((e) => !isGreeting(e)).map((e) => `${e.id}:${e.data}`);
      assert.equal(received.length, expected.length, `cursor ${cursor}: count`);
      assert.deepEqual(received, expected, `cursor ${cursor}`);
      stream.close();
    }
  });
});

describe('retention', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ retentionCount: 5 });
  });
  after(() => hub.close());

  it('keeps the newest messages per topic and signals a pruned cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await publish(hub.url, 'pruned', `m${i}`));
    await publish(hub.url, 'other-topic', 'does not count against pruned');
    const info = await (await fetch(`${hub.url}/messages/pruned`)).json();
    assert.equal(info.retained, 5);
    assert.equal(info.firstId, ids[5]);
    assert.equal(info.lastId, ids[9]);

    const stale = await openStream(subscribeUrl(hub, 'pruned'), { 'Last-Event-ID': ids[1]! });
    const fresh = await openStream(subscribeUrl(hub, 'pruned'), { 'Last-Event-ID': ids[6]! });
    try {
      assert.equal(stale.headers['replay-gap'], 'true');
      await stale.waitForCount(7);
      assert.equal(stale.events[1]!.event, 'gap');
      assert.deepEqual(messages(stale.events), ['m5', 'm6', 'm7', 'm8', 'm9']);

      assert.equal(fresh.headers['replay-gap'], undefined, 'a cursor inside the retained range is exact');
      await fresh.waitForCount(4);
      assert.deepEqual(messages(fresh.events), ['m7', 'm8', 'm9']);
    } finally {
      stale.close();
      fresh.close();
    }
  });
});
