import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreContract } from '../contract/store-contract.js';

runStoreContract('memory', async (retention) => {
  // A short prune interval so that age retention shows within the test's patience.
  const store = new MemoryStore({ ...retention, maxMessages: 10_000, pruneIntervalMs: 20 });
  return { store, cleanup: () => store.close() };
});
