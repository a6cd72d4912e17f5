/**
 * Hub.publishNow, the one publish of the article's API (Fastify's route and both lean paths):
 * without a promise on a store that appends synchronously, with one otherwise, and the same
 * guarantees either way: committed and dispatched when it returns, refusals thrown before the
 * store is asked.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Hub } from '../../src/hub/hub.js';
import type { Message } from '../../src/hub/message.js';
import type { SubscriberSink } from '../../src/hub/subscription.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';

const RETENTION = { maxMessagesPerTopic: 1000, maxAgeMs: 0 };

/** A sink that keeps the data of every message delivered to it. */
function recordingSink(): SubscriberSink & { received: string[] } {
  const received: string[] = [];
  return { received, closed: false, deliver: (message: Message) => received.push(message.data), close() {} };
}

describe('Hub.publishNow', () => {
  it('on the memory store: the committed message itself, already dispatched and counted, no promise', async () => {
    const hub = new Hub(new MemoryStore({ ...RETENTION, maxMessages: 100 }));
    await hub.start();
    const published: Message[] = [];
    hub.observe({ published: (m) => published.push(m), dispatched() {}, delivered() {}, replayed() {}, evicted() {} });
    const sink = recordingSink();
    const subscription = hub.open({ topics: ['a'] }, sink);
    await hub.resume(subscription, undefined);
    const message = hub.publishNow({ topics: ['a'], data: 'hello' });
    assert.ok(!(message instanceof Promise));
    assert.equal(message.data, 'hello');
    assert.deepEqual(sink.received, ['hello']);
    assert.deepEqual(published, [message]);
    assert.equal((await hub.store.read({ afterSeq: 0, topics: ['a'], limit: 10 }))[0]?.id, message.id);
    await hub.shutdown();
  });

  it('refuses synchronously what publish rejects: an invalid draft, a hub shutting down, a closed store', async () => {
    const store = new MemoryStore({ ...RETENTION, maxMessages: 100 });
    const hub = new Hub(store);
    await hub.start();
    assert.throws(() => hub.publishNow({ topics: [''], data: 'x' }), { code: 'HUB_ERR_TOPIC_INVALID' });
    await assert.rejects(hub.publish({ topics: [''], data: 'x' }), { code: 'HUB_ERR_TOPIC_INVALID' });
    await store.close();
    assert.throws(() => hub.publishNow({ topics: ['a'], data: 'x' }), { code: 'HUB_ERR_STORE_UNAVAILABLE' });
    await assert.rejects(hub.publish({ topics: ['a'], data: 'x' }), { code: 'HUB_ERR_STORE_UNAVAILABLE' });
    hub.beginShutdown();
    assert.throws(() => hub.publishNow({ topics: ['a'], data: 'x' }), { code: 'HUB_ERR_SHUTTING_DOWN' });
  });

  it('on the SQLite store (group commit): a promise of the committed message', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'publish-now-'));
    const hub = new Hub(new SqliteStore({ ...RETENTION, dataDir: dir, fsync: 'normal' }));
    try {
      await hub.start();
      const pending = hub.publishNow({ topics: ['a'], data: 'durable' });
      assert.ok(pending instanceof Promise);
      const message = await pending;
      assert.equal((await hub.store.read({ afterSeq: 0, topics: ['a'], limit: 10 }))[0]?.id, message.id);
    } finally {
      await hub.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
