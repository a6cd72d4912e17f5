import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Message } from '../../src/hub/message.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let redis: Promise<TestRedis> | undefined;
after(async () => {
  if (redis) await (await redis).stop();
});

const retention = { maxMessagesPerTopic: 1000, maxAgeMs: 0 };

describe('Redis store: holding messages for acknowledged consumers', () => {
  it('holds and dispatches what Redis accepted while the store closes, without an uncaught error', async () => {
    const server = await (redis ??= startRedis());
    const keyPrefix = `hold-on-close-${process.pid}:`;
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => void uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const store = new RedisStore({ ...retention, url: server.url, keyPrefix });
      const dispatched: Message[] = [];
      store.setAppendListener((message) => dispatched.push(message));
      await store.open();
      await store.consumers.attach('t', 'c', { owner: null, afterSeq: store.dispatchedThrough() }, Date.now());
      // Queued, then sent and dispatched by close(), after the store stopped accepting work.
      const appends = [store.append({ topics: ['t'], data: 'a' }), store.append({ topics: ['t'], data: 'b' })];
      await store.close();
      const messages = await Promise.all(appends);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(uncaught, [], 'closing never throws out of the read loop');
      assert.deepEqual(dispatched.map((m) => m.data), ['a', 'b'], 'both dispatched');

      // The next process finds both held for the consumer.
      const next = new RedisStore({ ...retention, url: server.url, keyPrefix });
      await next.open();
      try {
        const pending = await next.consumers.readPending('t', 0, 10);
        assert.deepEqual(pending.map((m) => m.seq), messages.map((m) => m.seq), 'both held');
      } finally {
        await next.close();
      }
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
