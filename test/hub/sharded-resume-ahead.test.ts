import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Hub } from '../../src/hub/hub.js';
import type { Message } from '../../src/hub/message.js';
import type { SubscriberSink } from '../../src/hub/subscription.js';
import { ShardedRedisStore } from '../../src/store/redis/sharded-redis-store.js';
import { draft, eventually } from '../contract/store-contract.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let redis: Promise<TestRedis> | undefined;
after(async () => {
  if (redis) await (await redis).stop();
});

/** A sink that keeps what it was given, as a client would see it (id and data). */
function collector(): SubscriberSink & { readonly events: [string, string][] } {
  const events: [string, string][] = [];
  return { events, closed: false, deliver: (message: Message) => void events.push([message.id, message.data]), close() {} };
}

/**
 * Issue 14, review item 3: a subscriber that caught up by reading Redis (replay) can be ahead of
 * this node's read loop on a shard; the live ids it gets next must still cover what it was
 * given, or resuming from one repeats messages.
 */
describe('sharded store: live ids after a replay that was ahead of the node', () => {
  it('resuming from the first live id after catching up past a lagging shard repeats nothing', async (t) => {
    const { url } = await (redis ??= startRedis());
    const options = { maxMessagesPerTopic: 100, maxAgeMs: 0, url, keyPrefix: 'ahead:', shards: 2 };
    const publisher = new ShardedRedisStore(options);
    const store = new ShardedRedisStore(options);
    t.after(() => Promise.all([publisher.close(), store.close()]));
    await publisher.open();
    const hub = new Hub(store);
    await hub.start();
    let x = 'x0';
    for (let i = 1; store.shardOf(x) !== 0; i++) x = `x${i}`;
    let y = 'y0';
    for (let i = 1; store.shardOf(y) !== 1; i++) y = `y${i}`;

    // This node's dispatch of shard 1 lags: what its loop reads waits until released.
    const lagging: Message[] = [];
    let lag = true;
    store.shards[1]!.setAppendListener((message) => (lag ? lagging.push(message) : store['barrier'].offer(1, message)));

    await publisher.append(draft(y, 'y1'));
    const sink = collector();
    const subscription = hub.open({ topics: [x, y] }, sink);
    await hub.joined(subscription);
    await publisher.append(draft(y, 'y2'));
    // Replay reads Redis directly: the subscriber gets y1 and y2, past the node's shard 1.
    await hub.resume(subscription, await hub.resolveCursor('earliest', [x, y]));
    await eventually(() => lagging.length >= 1, 'the node to read y2 (held)');
    await publisher.append(draft(x, 'x1'));
    await eventually(() => sink.events.some(([, data]) => data === 'x1'), 'x1 live');
    assert.deepEqual(sink.events.map(([, data]) => data), ['y1', 'y2', 'x1']);
    lag = false;
    for (const message of lagging.splice(0)) store['barrier'].offer(1, message);

    // The client drops after x1 and resumes from its id.
    const liveId = sink.events[2]![0];
    const resumed = collector();
    const again = hub.open({ topics: [x, y] }, resumed);
    await hub.joined(again);
    await hub.resume(again, await hub.resolveCursor(liveId, [x, y]));
    assert.deepEqual(resumed.events.map(([, data]) => data), [], `nothing repeated after ${liveId}`);
    hub.unsubscribe(subscription);
    hub.unsubscribe(again);
  });
});
