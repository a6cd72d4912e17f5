import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Hub } from '../../src/hub/hub.js';
import { LruCache } from '../../src/hub/lru-cache.js';
import type { Message } from '../../src/hub/message.js';
import type { SubscriberSink, TopicFilter } from '../../src/hub/subscription.js';
import { TopicMatcherSet } from '../../src/hub/topic-matcher.js';
import { MemoryStore } from '../../src/store/memory-store.js';

/** A sink that keeps what it receives. */
class CollectingSink implements SubscriberSink {
  readonly received: string[] = [];
  closed = false;
  deliver(message: Message): void {
    this.received.push(message.data);
  }
  close(): void {
    this.closed = true;
  }
}

/** A filter on a set of topics that counts how often the hub asks it. */
class CountingFilter implements TopicFilter {
  calls = 0;
  constructor(
    readonly key: string,
    private readonly accepted: ReadonlySet<string>,
  ) {}
  testAny(topics: readonly string[]): boolean {
    this.calls++;
    return topics.some((t) => this.accepted.has(t));
  }
}

async function startedHub(): Promise<Hub> {
  const hub = new Hub(new MemoryStore({ maxMessages: 1000, maxMessagesPerTopic: 0, maxAgeMs: 0 }));
  await hub.start();
  return hub;
}

describe('hub core: subscriptions grouped by topic filter', () => {
  it('tests each distinct filter once per message, whatever the number of subscriptions behind it', async (t) => {
    const hub = await startedHub();
    t.after(() => hub.shutdown());
    const shared = new CountingFilter('books', new Set(['books/1', 'books/2']));
    // Same key, another object: still one group (the first filter registered is the one asked).
    const sameKey = new CountingFilter('books', new Set(['books/1', 'books/2']));
    const users = new CountingFilter('users', new Set(['users/1']));
    const sinks = { books: [] as CollectingSink[], users: [] as CollectingSink[] };
    for (let i = 0; i < 200; i++) {
      const sink = new CollectingSink();
      sinks.books.push(sink);
      await hub.resume(hub.open({ filter: i % 2 === 0 ? shared : sameKey }, sink), undefined);
    }
    for (let i = 0; i < 50; i++) {
      const sink = new CollectingSink();
      sinks.users.push(sink);
      await hub.resume(hub.open({ filter: users }, sink), undefined);
    }
    assert.equal(hub.filterGroupCount, 2);

    await hub.publish({ topics: ['books/1'], data: 'b1' });
    await hub.publish({ topics: ['users/1', 'books/2'], data: 'both' });
    await hub.publish({ topics: ['other'], data: 'none' });
    assert.equal(shared.calls + sameKey.calls, 3, 'one test of the books group per message');
    assert.equal(users.calls, 3, 'one test of the users group per message');
    for (const sink of sinks.books) assert.deepEqual(sink.received, ['b1', 'both']);
    for (const sink of sinks.users) assert.deepEqual(sink.received, ['both']);
  });

  it('gives identical selector sets the same key, whatever their order and duplicates', () => {
    const a = TopicMatcherSet.compile([
      { type: 'uritemplate', match: 'https://example.com/books/{id}' },
      { type: 'exact', match: 'https://example.com/x' },
      { type: 'urlpattern', match: 'https://example.com/users/:id' },
    ]);
    const b = TopicMatcherSet.compile([
      { type: 'urlpattern', match: 'https://example.com/users/:id' },
      { type: 'exact', match: 'https://example.com/x' },
      { type: 'uritemplate', match: 'https://example.com/books/{id}' },
      { type: 'uritemplate', match: 'https://example.com/books/{id}' },
    ]);
    const c = TopicMatcherSet.compile([{ type: 'exact', match: 'https://example.com/books/{id}' }, { type: 'exact', match: 'https://example.com/x' }]);
    assert.equal(a.key, b.key);
    assert.notEqual(a.key, c.key, 'an exact topic is not the template of the same text');
    assert.equal(a.patternCount, 2);
    for (const topic of ['https://example.com/books/1', 'https://example.com/users/2', 'https://example.com/x']) assert.ok(a.testAny([topic]) && b.testAny([topic]), topic);
    assert.ok(!a.testAny(['https://example.com/books/1/2']));
  });

  it('LRU cache: keeps the most recently used entries within its capacity', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    assert.equal(cache.get('a'), 1);
    cache.set('c', 3);
    assert.equal(cache.get('b'), undefined, 'b was the least recently used');
    assert.equal(cache.get('a'), 1);
    assert.equal(cache.get('c'), 3);
    assert.equal(cache.size, 2);
  });
});
