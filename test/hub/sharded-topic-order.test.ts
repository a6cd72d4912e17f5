import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Hub } from '../../src/hub/hub.js';
import type { Message } from '../../src/hub/message.js';
import type { SubscriberSink, SubscriptionSelector } from '../../src/hub/subscription.js';
import { ShardedRedisStore } from '../../src/store/redis/sharded-redis-store.js';
import { draft, eventually } from '../contract/store-contract.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';

let cluster: Promise<TestRedisCluster> | undefined;
after(async () => {
  if (cluster) await (await cluster).stop();
});

/** A sink that keeps what it was given, as a client would see it (id and data). */
function collector(): SubscriberSink & { readonly events: { id: string; data: string }[] } {
  const events: { id: string; data: string }[] = [];
  return { events, closed: false, deliver: (message: Message) => void events.push({ id: message.id, data: message.data }), close() {} };
}

/** The topic sets publishers use: every pair and the triple, both ways round, and single topics. */
function topicSets(x: string, y: string, z: string): string[][] {
  return [[x, y], [y, x], [y, z], [z, y], [x, z], [z, x], [x, y, z], [z, y, x], [x], [y], [z], [y], [x], [z]];
}

/**
 * Issue 14: a subscriber of topics on several shards gets each message once and every topic's
 * messages in that topic's order, live and when resuming, although publishers on several
 * connections and nodes append multi-shard messages concurrently.
 */
describe('sharded store: order per topic for subscribers of several shards (3-master cluster)', () => {
  it('every subscriber gets each message once, in each topic\'s history order, and resumes from every id it saw with exactly the rest', async (t) => {
    const { url } = await (cluster ??= startRedisCluster());
    const options = { maxMessagesPerTopic: 10_000, maxAgeMs: 0, url, keyPrefix: `order-${Date.now()}:`, shards: 3 };
    const nodes = [new ShardedRedisStore(options), new ShardedRedisStore(options)];
    const publishers = [new ShardedRedisStore(options), new ShardedRedisStore(options)];
    t.after(() => Promise.all([...nodes, ...publishers].map((store) => store.close())));
    await Promise.all(publishers.map((store) => store.open()));
    // Small replay pages: resumes cross page ends, also between a message's copies.
    const hubs = nodes.map((store) => new Hub(store, { replayPageSize: 16, maxHeldDuringReplay: 10_000 }));
    await Promise.all(hubs.map((hub) => hub.start()));
    const store = nodes[0]!;
    const topicOn = (shard: number, prefix: string): string => {
      for (let i = 0; ; i++) if (store.shardOf(`${prefix}${i}`) === shard) return `${prefix}${i}`;
    };
    const [x, y, z] = [0, 1, 2].map((shard) => topicOn(shard, 'order-')) as [string, string, string];
    const xz = { key: 'x-or-z', testAny: (topics: readonly string[]) => topics.includes(x) || topics.includes(z) };
    const selectors: SubscriptionSelector[] = [{ topics: [x] }, { topics: [y] }, { topics: [z] }, { topics: [x, y] }, { topics: [z, y] }, { topics: [x, z] }, { topics: [y, x, z] }, {}, { filter: xz }];
    const matches = (selector: SubscriptionSelector, topics: readonly string[]): boolean =>
      selector.topics !== undefined ? topics.some((topic) => selector.topics!.includes(topic)) : selector.filter === undefined || selector.filter.testAny(topics);

    const subscribers = hubs.flatMap((hub, node) =>
      selectors.map((selector) => {
        const sink = collector();
        return { hub, node, selector, sink, subscription: hub.open(selector, sink), greeting: '' };
      }),
    );
    for (const s of subscribers) {
      await s.hub.joined(s.subscription);
      s.greeting = s.hub.startIdOf(s.subscription, undefined);
      await s.hub.resume(s.subscription, undefined);
    }

    // Four publishers (both hub nodes and two more connections), each with 8 publishes in
    // flight at once, over overlapping topic sets on different shards.
    const sets = topicSets(x, y, z);
    const published: { data: string; topics: string[] }[] = [];
    const publish = [...hubs.map((hub) => (d: ReturnType<typeof draft>) => hub.publish(d)), ...publishers.map((p) => (d: ReturnType<typeof draft>) => p.append(d))];
    await Promise.all(
      publish.map(async (send, p) => {
        for (let round = 0; round < 4; round++) {
          await Promise.all(
            Array.from({ length: 8 }, (_, i) => {
              const topics = sets[(p * 5 + round * 8 + i) % sets.length]!;
              const data = `p${p}-${round}-${i}`;
              published.push({ data, topics });
              return send(draft(topics, data));
            }),
          );
        }
      }),
    );
    const history = new Map<string, string[]>();
    for (const topic of [x, y, z]) history.set(topic, (await store.read({ afterSeq: 0, topics: [topic], limit: 10_000 })).map((m) => m.data));
    const topicsOf = new Map(published.map((m) => [m.data, m.topics]));

    /** Each message of `seen` once, and every topic of `selector` in its history order. */
    const check = (selector: SubscriptionSelector, seen: readonly string[], from: string[] | undefined, what: string): void => {
      assert.equal(new Set(seen).size, seen.length, `${what}: no duplicate`);
      const expected = published.filter((m) => matches(selector, m.topics)).map((m) => m.data);
      const rest = from === undefined ? expected : expected.filter((data) => !from.includes(data));
      assert.deepEqual([...seen].sort(), [...rest].sort(), `${what}: every message once`);
      for (const topic of [x, y, z]) {
        if (!matches(selector, [topic])) continue;
        const mine = seen.filter((data) => topicsOf.get(data)!.includes(topic));
        const order = history.get(topic)!.filter((data) => mine.includes(data));
        assert.deepEqual(mine, order, `${what}: topic ${topic} in its history order`);
      }
    };

    for (const s of subscribers) {
      const what = `node ${s.node} ${JSON.stringify(s.selector.topics ?? s.selector.filter?.key ?? '*')}`;
      const expected = published.filter((m) => matches(s.selector, m.topics)).length;
      await eventually(() => s.sink.events.length >= expected, `${what}: ${expected} messages`, 20_000);
      const seen = s.sink.events.map((e) => e.data);
      check(s.selector, seen, undefined, `${what} live`);
      // Resume on the other node from every id it saw (and its greeting): exactly the rest.
      const ids = [s.greeting, ...s.sink.events.map((e) => e.id)];
      const other = hubs[1 - s.node]!;
      for (const [i, id] of ids.entries()) {
        const sink = collector();
        const again = other.open(s.selector, sink);
        await other.joined(again);
        const cursor = await other.resolveCursor(id, s.selector.topics);
        assert.equal(cursor?.gap, false, `${what}: resume from ${id} without a gap`);
        await other.resume(again, cursor);
        other.unsubscribe(again);
        check(s.selector, sink.events.map((e) => e.data), seen.slice(0, i), `${what} resumed from ${id} (#${i})`);
      }
    }
    for (const s of subscribers) s.hub.unsubscribe(s.subscription);
  });
});
