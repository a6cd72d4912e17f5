import { after } from 'node:test';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { runStoreContract } from '../contract/store-contract.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

// One redis-server for the file; every store gets its own key prefix, as separate hubs
// sharing one Redis would.
let redis: Promise<TestRedis> | undefined;
let stores = 0;
after(async () => {
  if (redis) await (await redis).stop();
});

runStoreContract('redis', async (retention) => {
  const server = await (redis ??= startRedis());
  // A short prune interval so that age retention shows within the test's patience.
  const store = new RedisStore({ ...retention, url: server.url, keyPrefix: `contract-${++stores}:`, pruneIntervalMs: 20 });
  return { store, cleanup: () => store.close() };
});
