import { after } from 'node:test';
import { ShardedRedisStore } from '../../src/store/redis/sharded-redis-store.js';
import { runShardedStoreContract } from '../contract/sharded-store-contract.js';
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
