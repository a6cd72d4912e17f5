import { after } from 'node:test';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { runStoreContract } from '../contract/store-contract.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';

// One 3-master cluster for the file; every store gets its own key prefix, so its own hash tag
// and its own slot: the stores of this file land on different masters.
let cluster: Promise<TestRedisCluster> | undefined;
let stores = 0;
after(async () => {
  if (cluster) await (await cluster).stop();
});

runStoreContract('redis-cluster (3 masters)', async (retention) => {
  const { url } = await (cluster ??= startRedisCluster());
  const store = new RedisStore({ ...retention, url, keyPrefix: `contract-${++stores}:`, pruneIntervalMs: 20 });
  return { store, cleanup: () => store.close() };
});
