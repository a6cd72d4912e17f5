import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Subscription, type SubscriberSink } from '../../src/hub/subscription.js';
import type { Message } from '../../src/hub/message.js';
import { formatPosition, parsePosition } from '../../src/store/position-vector.js';
import type { ShardedRedisStore } from '../../src/store/redis/sharded-redis-store.js';
import type { RetentionOptions } from '../../src/store/store.js';
import { draft, eventually } from './store-contract.js';

/** Builds a fresh, not yet opened sharded store and a cleanup that closes it. */
export type ShardedStoreFactory = (retention: RetentionOptions) => Promise<{ store: ShardedRedisStore; cleanup(): Promise<void> }>;

const DEFAULT_RETENTION: RetentionOptions = { maxMessagesPerTopic: 1000, maxAgeMs: 0 };

/** A topic with this prefix on `shard`. */
function topicOn(store: ShardedRedisStore, shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (store.shardOf(`${prefix}${i}`) === shard) return `${prefix}${i}`;
}

/** What a subscription to `topics` takes from `copies`, in order (the hub's rule). */
function taken(topics: readonly string[] | undefined, copies: readonly Message[]): string[] {
  const sink: SubscriberSink = { closed: false, deliver() {}, close() {} };
  const subscription = new Subscription({ topics }, sink, 100, [0]);
  const out: string[] = [];
  for (const copy of copies) {
    // The hub offers a subscription only the messages of its topics (its index does).
    if (topics !== undefined && !copy.topics.some((topic) => topics.includes(topic))) continue;
    if (!subscription.wants(copy)) continue;
    subscription.replay(copy, Buffer.alloc(0));
    out.push(copy.data);
  }
  return out;
}

/**
 * What a store with several shards guarantees beyond one shard's {@link Store} contract
 * (which each shard keeps: it is the single-stream store on its own keys): routing, copies,
 * one delivery per subscription, position ids and their resolution, retention of copies, and
 * node-local interest. Run against one Redis and a Redis Cluster with three shards.
 */
export function runShardedStoreContract(name: string, makeStore: ShardedStoreFactory): void {
  async function openStore(t: TestContext, retention: RetentionOptions = DEFAULT_RETENTION): Promise<ShardedRedisStore> {
    const { store, cleanup } = await makeStore(retention);
    t.after(cleanup);
    await store.open();
    return store;
  }

  describe(`Sharded store contract: ${name}`, () => {
    it('appends to the topic\'s shard, dispatches in order per shard before resolving, and ids name positions', async (t) => {
      const store = await openStore(t);
      await store.follow(undefined);
      const seen: Message[] = [];
      store.setAppendListener((m) => seen.push(m));
      const topics = [0, 1, 2].map((shard) => topicOn(store, shard, 'route'));
      const appended = await Promise.all(Array.from({ length: 30 }, (_, i) => store.append(draft(topics[i % 3]!, `m${i}`)).then((m) => {
        assert.ok(seen.some((s) => s.shard === m.shard && s.seq === m.seq), 'dispatched before it resolved');
        return m;
      })));
      for (const [i, m] of appended.entries()) {
        assert.equal(m.shard, i % 3);
        assert.deepEqual(parsePosition(m.id, 3)?.[i % 3], m.seq, 'the id is its position on its shard');
      }
      for (const shard of [0, 1, 2]) {
        const mine = seen.filter((m) => m.shard === shard).map((m) => m.seq);
        assert.deepEqual(mine, [...mine].sort((a, b) => a - b), `shard ${shard} in seq order`);
        assert.equal(mine.length, 10);
      }
      const last = seen.at(-1)!;
      assert.equal(last.id, formatPosition(store.dispatchedVector(), 3), 'a dispatched id is the node position after it');
    });

    it('stores a message on topics of several shards as one copy per shard, each with every topic, taken once per subscription', async (t) => {
      const store = await openStore(t);
      await store.follow(undefined);
      const seen: Message[] = [];
      store.setAppendListener((m) => seen.push(m));
      const [x, y, z] = [0, 1, 2].map((shard) => topicOn(store, shard, 'copy')) as [string, string, string];
      await store.append(draft([z, x], 'zx'));
      await store.append(draft(y, 'y'));
      await store.appendAll([draft([x, y, z], 'xyz'), draft(z, 'z')]);
      assert.deepEqual(seen.filter((m) => m.data === 'zx').map((m) => [m.shard, [...m.topics]]).sort(), [[0, [z, x]], [2, [z, x]]]);
      assert.equal(seen.filter((m) => m.data === 'xyz').length, 3);
      // Every subscription gets the messages once, in publish order: copies taken from different
      // shards are merged by ticket (the appends here follow one another).
      const order = ['zx', 'y', 'xyz', 'z'];
      assert.deepEqual(taken([x, y, z], seen), order, 'every topic: each message once, in order');
      assert.deepEqual(taken([z], seen), ['zx', 'xyz', 'z'], 'one topic: its shard\'s copies, in order');
      assert.deepEqual(taken([y, z], seen), order);
      assert.deepEqual(taken(undefined, seen), order, 'all topics');
      const history = await store.read({ afterSeq: 0, topics: [x, y, z], limit: 100 });
      assert.deepEqual(taken([x, y, z], history), order, 'replay agrees with live');
      assert.deepEqual(taken([y], await store.read({ afterSeq: 0, topics: [y], limit: 100 })), ['y', 'xyz']);
    });

    it('resolves position ids per shard the topics need; a decimal or unknown id is a gap from the start', async (t) => {
      const store = await openStore(t);
      const [x, y] = [0, 1].map((shard) => topicOn(store, shard, 'cursor')) as [string, string];
      const x1 = await store.append(draft(x, 'x1'));
      const y1 = await store.append(draft(y, 'y1'));
      await store.append(draft(x, 'x2'));
      const both = formatPosition([x1.seq, y1.seq, 0], 3);
      assert.deepEqual(await store.resolveCursor(both, [x, y]), { afterSeq: x1.seq, after: [x1.seq, y1.seq, 0], gap: false });
      const after = (await store.resolveCursor(both, [x, y])).after!;
      assert.deepEqual((await store.read({ afterSeq: after[0]!, after, topics: [x, y], limit: 10 })).map((m) => m.data), ['x2']);
      assert.deepEqual(await store.resolveCursor(formatPosition([x1.seq, 0, 0], 3), [y]), { afterSeq: 0, after: [0, 0, 0], gap: false }, 'an absent component: from the start');
      for (const id of ['1700000000000001', 'v1.9:1', 'v1.0:zz.0:1', 'nope', 'v2.0:1']) {
        assert.equal((await store.resolveCursor(id, [x])).gap, true, `id ${id}`);
      }
      assert.deepEqual((await store.resolveCursor('1700000000000001', [x])).after, [0, 0, 0]);
    });

    it('trusts a custom id only on the shard whose copy a subscription takes; other shards are a gap (review item 1)', async (t) => {
      const store = await openStore(t);
      const [x, y, z] = [0, 1, 2].map((shard) => topicOn(store, shard, 'named')) as [string, string, string];
      // n(y) is before m's copy on shard 1. A subscriber of x and y takes m from shard 0, maybe
      // while shard 1's loop still lagged before n: resuming from m's id must not skip n silently.
      await store.append(draft(y, 'n'));
      const m = await store.append(draft([x, y], 'named', { id: 'urn:named' }));
      assert.equal(m.id, 'urn:named');
      const both = await store.resolveCursor('urn:named', [x, y]);
      const replayed = (await store.read({ afterSeq: both.afterSeq, after: both.after, topics: [x, y], limit: 10 })).map((message) => message.data);
      assert.ok(both.gap || replayed.includes('n'), `n replayed or a gap reported: ${JSON.stringify({ both, replayed })}`);
      assert.equal(both.gap, true, 'shard 1 is unknown');
      assert.ok(both.after![0]! > 0, 'shard 0 resumes after m');
      assert.deepEqual(replayed.filter((data) => data === 'named').length, 1, "m's copy on shard 1 comes again (the subscriber cannot tell it had it)");
      // One shard needed: the id is that shard's position, no gap.
      const yOnly = await store.resolveCursor('urn:named', [y]);
      assert.equal(yOnly.gap, false);
      assert.deepEqual(await store.read({ afterSeq: yOnly.afterSeq, after: yOnly.after, topics: [y], limit: 10 }), []);
      assert.deepEqual(await store.resolveCursor('urn:named', [z]), { afterSeq: 0, after: [0, 0, 0], gap: true }, 'no copy: unknown');
    });

    it('prunes copies by count and by age on each shard, and reports the gap only where it is', async (t) => {
      const store = await openStore(t, { maxMessagesPerTopic: 2, maxAgeMs: 300 });
      const [x, y] = [0, 1].map((shard) => topicOn(store, shard, 'prune')) as [string, string];
      const first = await store.append(draft([x, y], 'shared'));
      for (let i = 0; i < 3; i++) await store.append(draft(x, `x${i}`));
      await eventually(async () => (await store.read({ afterSeq: 0, topics: [x], limit: 10 })).length === 2, 'x pruned to 2');
      assert.deepEqual((await store.read({ afterSeq: 0, topics: [y], limit: 10 })).map((m) => m.data), ['shared'], 'y keeps its copy');
      assert.equal((await store.resolveCursor(formatPosition([first.seq, 0, 0], 3), [x])).gap, true, 'x lost messages after the shared one');
      await eventually(async () => (await store.read({ afterSeq: 0, topics: [x, y], limit: 10 })).length === 0, 'age retention to prune every copy', 5000);
      assert.equal((await store.topicStats(y)).retained, 0);
    });

    it('reads only the shards local subscriptions need (node-local interest)', async (t) => {
      const store = await openStore(t);
      const seen: string[] = [];
      store.setAppendListener((m) => seen.push(m.data));
      const topics = [0, 1, 2].map((shard) => topicOn(store, shard, 'interest'));
      const [x, y] = topics as [string, string];
      // An append to a shard nobody follows resolves without waiting for a dispatch, so a loop
      // that read it anyway would dispatch it later: wait until it would have. Redis sends a
      // blocked XREAD its entries no later than the append's reply, so two more round trips on
      // each shard's master see them dispatched.
      const settled = (): Promise<unknown> => Promise.all(topics.map(async (topic) => {
        await store.topicStats(topic);
        await store.topicStats(topic);
      }));
      await store.append(draft(x, 'nobody listens'));
      await settled();
      assert.deepEqual(seen, [], 'no interest: nothing dispatched');
      const started = await store.follow([x]);
      assert.deepEqual([...started.keys()], [0]);
      await store.append(draft(x, 'x for us'));
      await store.append(draft(y, 'y not'));
      await settled();
      assert.deepEqual(seen, ['x for us']);
      assert.deepEqual(store.shards.map((s) => s.following), [true, false, false]);
      store.unfollow([x]);
      assert.deepEqual(store.shards.map((s) => s.following), [false, false, false]);
      await store.append(draft(x, 'after'));
      await settled();
      assert.deepEqual(seen, ['x for us']);
    });
  });
}
