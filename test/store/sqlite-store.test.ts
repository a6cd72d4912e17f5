import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { runStoreContract } from '../contract/store-contract.js';

runStoreContract('sqlite', async (retention) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sse-relay-sqlite-'));
  // A short prune interval so that age retention shows within the test's patience.
  const store = new SqliteStore({ ...retention, dataDir, fsync: 'normal', pruneIntervalMs: 20 });
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
