/**
 * The publisher of the interest scenario: single-topic appends straight into the shards with
 * the store's own script call (`RedisScripts.append`, the store's KEYS, ARGV and retention),
 * one call per message, `lanes` calls in flight at a time, each lane waiting for its reply
 * before the next (as non-pipelined publishers through a hub that does not batch them). Lanes
 * walk the topics round-robin, so every topic gets its share.
 */
import type { Cluster } from 'ioredis';
import { serveOptions } from '../../src/config/load.js';
import { encodeDraft } from '../../src/store/redis/codec.js';
import type { RedisScripts } from '../../src/store/redis/scripts.js';
import { shardOf } from '../../src/store/redis/shard-of.js';
import { PAYLOAD_SIZE } from '../loadgen/payload.js';

/** The store's prune budget per topic and call (redis-store.ts PRUNE_BUDGET). */
const PRUNE_BUDGET = 2000;
/** The hub's default count retention: topics prune as in a deployment left at its defaults. */
const RETENTION_COUNT = serveOptions().retentionCount;
const DATA = 'x'.repeat(PAYLOAD_SIZE);

export interface AppendLoad {
  /** Appends acknowledged so far, per topic (by index in `topics`). */
  readonly perTopic: Uint32Array;
  /** Acknowledged in all, and refused (a failed call; the lane goes on). */
  published(): number;
  failed(): number;
  /** Stops the lanes; resolves once every call in flight has its reply. */
  stop(): Promise<void>;
}

/** `scripts[k]` is shard k's; `client` holds the script variant the transport needs. */
export function startAppendLoad(client: Cluster, scripts: readonly RedisScripts[], topics: readonly string[], lanes: number): AppendLoad {
  const shardOfTopic = topics.map((t) => shardOf(t, scripts.length));
  const perTopic = new Uint32Array(topics.length);
  let published = 0;
  let failed = 0;
  let stopping = false;
  const lane = async (first: number): Promise<void> => {
    for (let i = first; !stopping; i = (i + lanes) % topics.length) {
      const topic = topics[i]!;
      const now = Date.now();
      try {
        await scripts[shardOfTopic[i]!]!.append(client, {
          base: now * 1000,
          maxMessagesPerTopic: RETENTION_COUNT,
          pruneBudget: PRUNE_BUDGET,
          topics: [topic],
          values: encodeDraft({ topics: [topic], data: DATA }, [topic], now),
        });
        perTopic[i]!++;
        published++;
      } catch {
        // Counted (the scenario reports it) without spinning on a master that is down.
        failed++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  const running = Array.from({ length: lanes }, (_, k) => lane(k % topics.length));
  return {
    perTopic,
    published: () => published,
    failed: () => failed,
    stop: async () => {
      stopping = true;
      await Promise.all(running);
    },
  };
}
