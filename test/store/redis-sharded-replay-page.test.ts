import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Message } from '../../src/hub/message.js';
import { ShardedRedisStore } from '../../src/store/redis/sharded-redis-store.js';
import { draft } from '../contract/store-contract.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const SHARDS = 3;
const BODY = 10_000;

let redis: TestRedis;
let admin: Redis;
before(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
after(async () => {
  admin?.disconnect();
  await redis?.stop();
});

/** Bytes Redis has sent to all its clients so far. */
async function bytesSent(): Promise<number> {
  return Number(/^total_net_output_bytes:(\d+)/m.exec(await admin.info('stats'))![1]);
}

describe('sharded Redis store: a replay page over every shard', () => {
  it('reads about one page from Redis in all, not one per shard, and pages through every shard in order', async (t) => {
    const store = new ShardedRedisStore({ maxMessagesPerTopic: 1000, maxAgeMs: 0, url: redis.url, keyPrefix: 'page:', shards: SHARDS });
    t.after(() => store.close());
    await store.open();
    const topics = Array.from({ length: SHARDS }, (_, shard) => {
      for (let i = 0; ; i++) if (store.shardOf(`page-${i}`) === shard) return `page-${i}`;
    });
    // Bursts of 20 per shard, one shard after the other: the oldest page lies on one shard.
    const published: Message[] = [];
    for (let i = 0; i < 180; i++) {
      // Publish times tie within a millisecond, and the merge breaks ties by shard: a burst
      // starts a millisecond after the last one, so publish order is time order.
      if (i % 20 === 0) for (const last = published.at(-1)?.time ?? 0; Date.now() <= last; );
      published.push(await store.append(draft(topics[Math.floor(i / 20) % SHARDS]!, `${i} ${'x'.repeat(BODY)}`)));
    }
    const order = (messages: readonly Message[]): string[] => messages.map((m) => m.data.split(' ')[0]!);

    const limit = 30;
    const before = await bytesSent();
    const page = await store.read({ afterSeq: 0, after: [0, 0, 0], limit });
    const sent = (await bytesSent()) - before;
    assert.deepEqual(order(page), order(published.slice(0, limit)), 'the oldest page, in publish order');
    // At most a page plus one chunk (limit / shards) per shard, read ahead and not used.
    const bound = (limit + SHARDS * Math.ceil(limit / SHARDS)) * BODY * 1.1;
    assert.ok(sent < bound, `Redis sent ${sent} bytes for one page of ${limit} (bound ${Math.round(bound)}; one page per shard would be ${SHARDS * limit * BODY})`);

    // Paged as the hub's replay pages: the read position per shard moves past what it got; a
    // short page is the end.
    const got: Message[] = [];
    const position = [0, 0, 0];
    for (;;) {
      const next = await store.read({ afterSeq: position[0]!, after: position, limit: 25 });
      for (const m of next) position[m.shard!] = m.seq;
      got.push(...next);
      if (next.length < 25) break;
    }
    assert.deepEqual(order(got), order(published), 'every message once, in publish order');
  });
});
