import { crc32 } from 'node:zlib';

/**
 * The shard of a topic among `shardCount`: crc32 of its UTF-8 bytes modulo the count. Computed
 * by the hub, not taken from Redis' slot map, so it is the same on every node and does not
 * change when the cluster is resharded (the operator places the shards' hash tags instead).
 */
export function shardOf(topic: string, shardCount: number): number {
  return shardCount <= 1 ? 0 : crc32(topic) % shardCount;
}
