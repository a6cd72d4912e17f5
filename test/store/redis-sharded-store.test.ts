import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
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
