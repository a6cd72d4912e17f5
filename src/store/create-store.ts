import type { ServeOptions } from '../config/options.js';
import { RelayError } from '../hub/errors.js';
import { MemoryStore } from './memory-store.js';
import { redisStoreLog } from './redis/log.js';
import { RedisStore } from './redis/redis-store.js';
import { ShardedRedisStore } from './redis/sharded-redis-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

/** Builds the store chosen by `--store` (not yet opened). */
export function createStore(options: ServeOptions): Store {
  const retention = { maxMessagesPerTopic: options.retentionCount, maxAgeMs: options.retentionAge, consumerMaxPending: options.consumerMaxPending };
  switch (options.store) {
    case 'memory':
      return new MemoryStore({ ...retention, maxMessages: options.memoryMaxMessages });
    case 'sqlite':
      return new SqliteStore({ ...retention, dataDir: options.dataDir, fsync: options.fsync });
    default:
      if (options.store.startsWith('redis://') || options.store.startsWith('rediss://') || options.store.startsWith('redis-cluster://')) {
        const redis = { ...retention, url: options.store, keyPrefix: options.redisKeyPrefix, log: redisStoreLog(options.logLevel) };
        return options.redisShards > 1 ? new ShardedRedisStore({ ...redis, shards: options.redisShards }) : new RedisStore(redis);
      }
      throw new RelayError('HUB_ERR_CONFIG_INVALID', `Unsupported store: ${options.store}`);
  }
}
