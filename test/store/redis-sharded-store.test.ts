import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { redisKeys } from '../../src/store/redis/scripts.js';
import { ShardedRedisStore } from '../../src/store/redis/sharded-redis-store.js';
import { runShardedStoreContract } from '../contract/sharded-store-contract.js';
import { Redis } from 'ioredis';
import { draft, eventually } from '../contract/store-contract.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

// One redis-server and one 3-master cluster for the file; every store its own key prefix.
let redis: Promise<TestRedis> | undefined;
let cluster: Promise<TestRedisCluster> | undefined;
let stores = 0;
after(async () => {
  if (redis) await (await redis).stop();
  if (cluster) await (await cluster).stop();
});

runShardedStoreContract('redis, 3 shards', async (retention) => {
  const { url } = await (redis ??= startRedis());
  const store = new ShardedRedisStore({ ...retention, url, keyPrefix: `sharded-${++stores}:`, shards: 3, pruneIntervalMs: 20 });
  return { store, cleanup: () => store.close() };
});

runShardedStoreContract('redis-cluster (3 masters), 3 shards', async (retention) => {
  const { url } = await (cluster ??= startRedisCluster());
  const store = new ShardedRedisStore({ ...retention, url, keyPrefix: `sharded-${++stores}:`, shards: 3, pruneIntervalMs: 20 });
  return { store, cleanup: () => store.close() };
});

describe('sharded Redis store on a cluster: placement', () => {
  it('logs which master serves each shard once open', async (t) => {
    const { url, masters } = await (cluster ??= startRedisCluster());
    const lines: string[] = [];
    const store = new ShardedRedisStore({ maxMessagesPerTopic: 10, maxAgeMs: 0, url, keyPrefix: `placement-${++stores}:`, shards: 3, log: (_level, message) => lines.push(message) });
    t.after(() => store.close());
    await store.open();
    await eventually(() => lines.some((line) => line.startsWith('Redis shards by master: ')), 'the placement line');
    const line = lines.find((l) => l.startsWith('Redis shards by master: '))!;
    const named = masters.filter((m) => line.includes(`:${m.port}:`)).length;
    assert.ok(named >= 1, line);
    assert.deepEqual([...line.matchAll(/: ([0-9, ]+)(?:;|$| \()/g)].flatMap((m) => m[1]!.split(', ').map(Number)).sort(), [0, 1, 2], `every shard placed: ${line}`);
  });
});

describe('sharded Redis store: readiness of a shard nobody reads', () => {
  it('a shard whose read failed, then left by its last subscriber, takes publishes again (review item 4)', async (t) => {
    const { url } = await (redis ??= startRedis());
    const store = new ShardedRedisStore({ maxMessagesPerTopic: 10, maxAgeMs: 0, url, keyPrefix: `unfollowed-${++stores}:`, shards: 2, pruneIntervalMs: 20 });
    t.after(() => store.close());
    await store.open();
    let topic = 'orphan-0';
    for (let i = 1; store.shardOf(topic) !== 1; i++) topic = `orphan-${i}`;
    await store.follow([topic]);

    // Kill the shard's reader connection: its blocked XREAD fails. Before it rejoins, the last
    // local subscriber leaves, so the loop pauses.
    const admin = new Redis(url);
    t.after(() => admin.disconnect());
    const readerIds = async (): Promise<string[]> => {
      const clients = (await admin.client('LIST')) as string;
      return [...clients.matchAll(/^id=(\d+) .*name=sse-relay:(\S+):reader .*$/gm)].filter((m) => m[2] === store.shards[1]!.nodeId).map((m) => m[1]!);
    };
    const [killed] = await readerIds();
    assert.ok(killed, 'the reader of shard 1 is connected');
    await admin.client('KILL', 'ID', killed);
    await new Promise((resolve) => setImmediate(resolve));
    store.unfollow([topic]);

    // The connection comes back; nothing reads the shard now, and publishing to it must work.
    await eventually(async () => (await readerIds()).some((id) => id !== killed), 'the reader connection back');
    // The sharded store is ready while any shard is: this one's connections must be back.
    await eventually(() => store.shards[1]!.isReady(), 'the shard ready again');
    const message = await store.append(draft([topic], 'after the reader died'));
    assert.equal(message.data, 'after the reader died');
  });

});

describe('sharded Redis store: the shard count is fixed for a deployment (review item 7)', () => {
  it('refuses to open on a history written with another --redis-shards, naming both counts', async (t) => {
    const { url } = await (redis ??= startRedis());
    const keyPrefix = `count-${++stores}:`;
    const first = new ShardedRedisStore({ maxMessagesPerTopic: 10, maxAgeMs: 0, url, keyPrefix, shards: 3 });
    t.after(() => first.close());
    await first.open();
    const same = new ShardedRedisStore({ maxMessagesPerTopic: 10, maxAgeMs: 0, url, keyPrefix, shards: 3 });
    await same.open();
    await same.close();
    const other = new ShardedRedisStore({ maxMessagesPerTopic: 10, maxAgeMs: 0, url, keyPrefix, shards: 4 });
    t.after(() => other.close());
    await assert.rejects(other.open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_OPEN');
      assert.match(error.message, /--redis-shards 3\b.*--redis-shards 4\b/);
      return true;
    });
  });
});

/** A topic with this prefix on `shard`. */
function topicOn(store: ShardedRedisStore, shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (store.shardOf(`${prefix}${i}`) === shard) return `${prefix}${i}`;
}

describe('sharded Redis store: messages on several shards and their locks', () => {
  it('a copy that never arrives on its other shard stops that merge only up to the bound, then delivery goes on in order', async (t) => {
    const { url } = await (redis ??= startRedis());
    const options = { maxMessagesPerTopic: 100, maxAgeMs: 0, url, keyPrefix: `missing-${++stores}:`, shards: 2, commandTimeoutMs: 200 };
    const warnings: string[] = [];
    const node = new ShardedRedisStore({ ...options, log: (level, message) => void (level === 'warn' && warnings.push(message)) });
    const publisher = new ShardedRedisStore(options);
    t.after(() => Promise.all([node.close(), publisher.close()]));
    await Promise.all([node.open(), publisher.open()]);
    const [x, y] = [topicOn(node, 0, 'missing'), topicOn(node, 1, 'missing')];
    const seen: string[] = [];
    node.setAppendListener((m) => seen.push(m.data));
    await node.follow([x, y]);

    // A publish of m on x and y whose copy reached shard 0 only (shard 1 refused it).
    const token = 'lost-publisher';
    const deadline = Date.now() + 1000;
    const ticket = 1 + Math.max(await publisher.shards[0]!.lock(token, 5000, deadline), await publisher.shards[1]!.lock(token, 5000, deadline));
    await publisher.shards[0]!.appendFenced([draft([x, y], 'm')], token, [ticket]);
    publisher.shards[0]!.unlock(token);
    publisher.shards[1]!.unlock(token);
    // Shard 0 is stopped at m, waiting for shard 1 to pass its ticket; it never will.
    const later = publisher.append(draft(x, 'x after m'));
    await publisher.append(draft(y, 'y1'));
    await later;
    await eventually(() => seen.includes('x after m'), 'shard 0 to go on after the bound', 5000);
    assert.deepEqual(seen, ['y1', 'm', 'x after m']);
    assert.equal(node.missingCopies, 1);
    assert.ok(warnings.some((w) => w.includes('never came')), warnings.join('\n'));
    // Nothing more waits: a message on both shards now goes through, its two copies together.
    await publisher.append(draft([y, x], 'both'));
    // The publisher's append resolves at its own node; this node's loops deliver on their own.
    await eventually(() => seen.length >= 5, 'both copies at the other node', 5000);
    assert.deepEqual(seen, ['y1', 'm', 'x after m', 'both', 'both']);
    // Replay does not wait for the missing copy: its publisher no longer holds the lock.
    assert.deepEqual((await node.read({ afterSeq: 0, after: [0, 0], topics: [x, y], limit: 10 })).map((m) => m.data).filter((d, i, all) => all.indexOf(d) === i), ['m', 'x after m', 'y1', 'both'], 'by publish time, m not held back');
  });

  it('a lock left by a dead publisher is taken once its lease ends; one held past the command timeout fails the publish with 503', async (t) => {
    const { url } = await (redis ??= startRedis());
    const keyPrefix = `lease-${++stores}:`;
    const store = new ShardedRedisStore({ maxMessagesPerTopic: 100, maxAgeMs: 0, url, keyPrefix, shards: 2, commandTimeoutMs: 1000 });
    t.after(() => store.close());
    await store.open();
    const admin = new Redis(url);
    t.after(() => admin.disconnect());
    const [x, y] = [topicOn(store, 0, 'lease'), topicOn(store, 1, 'lease')];
    const lock = `{${keyPrefix}0}lock`;

    await admin.set(lock, 'dead-publisher', 'PX', 300);
    const message = await store.append(draft([x, y], 'after the lease'));
    assert.equal(message.data, 'after the lease');
    await eventually(async () => (await admin.exists(lock)) === 0, 'the lock released after the append');

    await admin.set(lock, 'stuck-publisher', 'PX', 60_000);
    await assert.rejects(store.append(draft([x, y], 'blocked')), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_UNAVAILABLE');
      assert.match(error.message, /lock of shard 0/);
      return true;
    });
    assert.equal(await admin.get(lock), 'stuck-publisher', 'another holder\'s lock is left alone');
    assert.deepEqual((await store.read({ afterSeq: 0, after: [0, 0], topics: [x, y], limit: 10 })).map((m) => m.data), ['after the lease', 'after the lease']);
  });

  it('a shard failing in a lock round fails only the publishes with a copy there (issue 14 review)', async (t) => {
    const { url } = await (redis ??= startRedis());
    const keyPrefix = `round-${++stores}:`;
    const store = new ShardedRedisStore({ maxMessagesPerTopic: 100, maxAgeMs: 0, url, keyPrefix, shards: 3 });
    t.after(() => store.close());
    await store.open();
    const admin = new Redis(url);
    t.after(() => admin.disconnect());
    const [a, b, c] = [topicOn(store, 0, 'round'), topicOn(store, 1, 'round'), topicOn(store, 2, 'round')];
    await store.append(draft([a, c], 'warm'));
    // Shard 2 refuses appends from now on (its log key is of the wrong type: any script error).
    const log = redisKeys(keyPrefix, false, 2).log;
    await admin.del(log);
    await admin.set(log, 'not a stream');
    // p1 and p2 queue while p0's round runs, and go in the next round together.
    const p0 = store.append(draft([a, b], 'p0'));
    const p1 = store.append(draft([a, b], 'p1'));
    const p2 = store.append(draft([b, c], 'p2'));
    await assert.rejects(p2);
    assert.equal((await p0).data, 'p0');
    assert.equal((await p1).data, 'p1', 'all its copies were stored: its publisher must not retry it');
    assert.deepEqual((await store.read({ afterSeq: 0, after: [0, 0, 0], topics: [a], limit: 10 })).map((m) => m.data), ['warm', 'p0', 'p1']);
  });

  it('a publisher whose lease expired before its append gets an error and stores nothing', async (t) => {
    const { url } = await (redis ??= startRedis());
    const keyPrefix = `fenced-${++stores}:`;
    const store = new ShardedRedisStore({ maxMessagesPerTopic: 100, maxAgeMs: 0, url, keyPrefix, shards: 2 });
    t.after(() => store.close());
    await store.open();
    const admin = new Redis(url);
    t.after(() => admin.disconnect());
    const [x, y] = [topicOn(store, 0, 'fenced'), topicOn(store, 1, 'fenced')];
    const shard = store.shards[0]!;
    const ticket = 1 + (await shard.lock('slow-publisher', 5000, Date.now() + 1000));
    // Its lease ends (as PX would) and another publisher takes the lock before its append lands.
    await admin.del(`{${keyPrefix}0}lock`);
    await admin.set(`{${keyPrefix}0}lock`, 'next-publisher', 'PX', 5000);
    await assert.rejects(shard.appendFenced([draft([x, y], 'late')], 'slow-publisher', [ticket]), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_UNAVAILABLE');
      assert.match(error.message, /expired/);
      return true;
    });
    assert.deepEqual(await store.read({ afterSeq: 0, after: [0, 0], topics: [x], limit: 10 }), [], 'nothing stored');
    assert.equal(await admin.hget(`{${keyPrefix}0}meta`, 'ticket'), null, 'no ticket recorded');
  });
});
