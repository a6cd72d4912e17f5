import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { Message } from '../../src/hub/message.js';
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis/redis-store.js';
import { draft, eventually } from '../contract/store-contract.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let prefixes = 0;
const uniquePrefix = (): string => `nodes-${++prefixes}:`;

/** A store recording what its listener saw and what it logged; closed after the test. */
async function node(t: TestContext, url: string, options: Partial<RedisStoreOptions> = {}) {
  const seen: Message[] = [];
  const logs: string[] = [];
  const store = new RedisStore({
    url,
    keyPrefix: 'shared:',
    maxMessagesPerTopic: 1000,
    maxAgeMs: 0,
    pruneIntervalMs: 20,
    commandTimeoutMs: 1000,
    log: (level, message) => logs.push(`${level}: ${message}`),
    ...options,
  });
  store.setAppendListener((m) => seen.push(m));
  t.after(() => store.close());
  await store.open();
  return { store, seen, logs };
}

const seqs = (messages: readonly Message[]): number[] => messages.map((m) => m.seq);

describe('Redis store: several nodes on one Redis', () => {
  let redis: TestRedis;
  let admin: Redis;
  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url, { protocol: 2 });
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });

  it('gives every node every message, in one seq order, with concurrent appends on all nodes', async (t) => {
    const keyPrefix = uniquePrefix();
    const nodes = [await node(t, redis.url, { keyPrefix }), await node(t, redis.url, { keyPrefix }), await node(t, redis.url, { keyPrefix })];
    const perNode = 600;
    const appended = await Promise.all(
      nodes.map(async ({ store }, n) => {
        const out: Message[] = [];
        // Bursts of concurrent appends, so that batches from the nodes interleave in Redis.
        for (let burst = 0; burst < perNode / 50; burst++) {
          out.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => store.append(draft(`topic-${i % 3}`, `n${n}-${burst}-${i}`))))));
        }
        return out;
      }),
    );
    const all = appended.flat().sort((a, b) => a.seq - b.seq);
    assert.equal(new Set(seqs(all)).size, 3 * perNode, 'seqs are unique across nodes');
    for (const { seen } of nodes) {
      await eventually(() => seen.length >= all.length, 'every node to dispatch every message');
      assert.deepEqual(seqs(seen), seqs(all), 'each node saw every message once, in seq order');
      assert.deepEqual(seen.map((m) => m.data), all.map((m) => m.data));
    }
    // Each node's own appends resolved only after its listener saw them.
    for (const [n, { seen }] of nodes.entries()) {
      const own = new Set(seqs(appended[n]!));
      assert.equal(seen.filter((m) => own.has(m.seq)).length, own.size);
    }
  });

  it('resolves ids and reads history written by another node', async (t) => {
    const keyPrefix = uniquePrefix();
    const a = await node(t, redis.url, { keyPrefix });
    const b = await node(t, redis.url, { keyPrefix });
    const first = await a.store.append(draft('x', 'one', { id: 'custom-one' }));
    const second = await a.store.append(draft('x', 'two'));
    assert.deepEqual(await b.store.resolveCursor('custom-one', ['x']), { afterSeq: first.seq, gap: false });
    assert.deepEqual(await b.store.resolveCursor(String(second.seq)), { afterSeq: second.seq, gap: false });
    assert.deepEqual(seqs(await b.store.read({ afterSeq: first.seq, topics: ['x'], limit: 10 })), [second.seq]);
    assert.deepEqual(await b.store.topicStats('x'), { retained: 2, firstId: 'custom-one', lastId: String(second.seq) });
  });

  it('keeps hubs with different key prefixes apart', async (t) => {
    const a = await node(t, redis.url, { keyPrefix: uniquePrefix() });
    const b = await node(t, redis.url, { keyPrefix: uniquePrefix() });
    const m = await a.store.append(draft('same-topic', 'only in a'));
    await b.store.append(draft('other', 'only in b'));
    assert.deepEqual(await b.store.read({ afterSeq: 0, topics: ['same-topic'], limit: 10 }), []);
    assert.deepEqual(seqs(a.seen), [m.seq]);
    assert.equal(b.seen.length, 1);
    const keys = await admin.keys('*');
    assert.ok(keys.every((k) => /^(nodes-\d+|shared):/.test(k)), `every key carries a prefix: ${keys.join(', ')}`);
  });

  it('sends the appends of one turn in a few script calls (pipelined batches)', async (t) => {
    const { store } = await node(t, redis.url, { keyPrefix: uniquePrefix() });
    const before = store.batchCount;
    await Promise.all(Array.from({ length: 2500 }, (_, i) => store.append(draft(`t${i % 10}`, `m${i}`))));
    assert.ok(store.batchCount - before <= 3, `${store.batchCount - before} script calls for 2500 appends`);
  });

  it('keeps a pruned message in the log until every live node has dispatched it', async (t) => {
    const keyPrefix = uniquePrefix();
    const { store } = await node(t, redis.url, { keyPrefix, maxMessagesPerTopic: 1 });
    const first = await store.append(draft('p', 'first'));
    // A node that registered and then fell behind (its read position is before `first`).
    await admin.hset(`${keyPrefix}readers`, 'lagging-node', String(first.seq - 1));
    await admin.set(`${keyPrefix}reader:lagging-node`, String(first.seq - 1), 'PX', 60_000);
    await store.append(draft('p', 'second'));
    assert.deepEqual((await store.read({ afterSeq: 0, limit: 10 })).map((m) => m.data), ['second'], 'gone from history at once');
    assert.equal(await admin.zcard(`${keyPrefix}dead`), 1);
    // Several sweeps run meanwhile (every 20 ms); the lagging node still needs `first`.
    await eventually(async () => (await admin.hget(`${keyPrefix}readers`, store.nodeId)) !== null, 'a heartbeat');
    const before = Date.now();
    await eventually(() => Date.now() - before > 100, 'a few sweeps');
    assert.equal(await admin.xlen(`${keyPrefix}log`), 2, 'the body stays for the lagging reader');
    // The lagging node dies: its liveness key expires, and the sweep no longer waits for it.
    await admin.del(`${keyPrefix}reader:lagging-node`);
    await eventually(async () => (await admin.xlen(`${keyPrefix}log`)) === 1, 'the sweep to delete the body');
    assert.equal(await admin.zcard(`${keyPrefix}dead`), 0);
    assert.equal(await admin.hexists(`${keyPrefix}readers`, 'lagging-node'), 0, 'the dead node is forgotten');
  });

  it('close() sends, commits and dispatches what was appended just before, promptly', async (t) => {
    const { store, seen } = await node(t, redis.url, { keyPrefix: uniquePrefix() });
    const pending = Array.from({ length: 300 }, (_, i) => store.append(draft('closing', `m${i}`)));
    const started = Date.now();
    await store.close();
    assert.ok(Date.now() - started < 500, `close took ${Date.now() - started} ms`);
    const appended = await Promise.all(pending);
    assert.deepEqual(seqs(seen), seqs(appended), 'every append dispatched before it resolved');
  });

  it('leaves the readers hash on close', async (t) => {
    const keyPrefix = uniquePrefix();
    const { store } = await node(t, redis.url, { keyPrefix });
    assert.equal(await admin.hexists(`${keyPrefix}readers`, store.nodeId), 1);
    await store.close();
    assert.equal(await admin.hexists(`${keyPrefix}readers`, store.nodeId), 0);
    assert.equal(await admin.exists(`${keyPrefix}reader:${store.nodeId}`), 0);
  });

  it('answers an append Redis refuses for lack of memory with HUB_ERR_STORE_FULL, storing nothing', async (t) => {
    const keyPrefix = uniquePrefix();
    const { store, seen } = await node(t, redis.url, { keyPrefix });
    await store.append(draft('oom', 'fits'));
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', String(used + 256 * 1024));
    t.after(() => admin.config('SET', 'maxmemory', '0'));
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.append(draft('oom', `${i}`.padEnd(200_000, 'x')))));
    const refused = results.filter((r) => r.status === 'rejected');
    assert.ok(refused.length > 0, 'some appends are refused');
    for (const r of refused) assert.equal((r as PromiseRejectedResult).reason.code, 'HUB_ERR_STORE_FULL');
    await admin.config('SET', 'maxmemory', '0');
    const accepted = results.filter((r): r is PromiseFulfilledResult<Message> => r.status === 'fulfilled').map((r) => r.value.seq);
    const stored = await store.read({ afterSeq: 0, topics: ['oom'], limit: 100 });
    assert.deepEqual(seqs(stored).slice(1), accepted, 'exactly the accepted ones are stored');
    await eventually(() => seen.length === stored.length, 'dispatch');
    assert.deepEqual(seqs(seen), seqs(stored));
  });
});

describe('Redis store: outages', () => {
  it('fails appends fast while Redis is down, keeps what was acknowledged, and resumes dispatch after a restart', async (t) => {
    const redis = await startRedis({ persistence: 'aof' });
    t.after(() => redis.stop());
    const a = await node(t, redis.url);
    const b = await node(t, redis.url);
    const acknowledged: Message[] = [];
    for (let i = 0; i < 20; i++) acknowledged.push(await (i % 2 ? a : b).store.append(draft('o', `before-${i}`)));

    await redis.kill();
    await eventually(() => !a.store.isReady() && !b.store.isReady(), 'both nodes to notice');
    const started = Date.now();
    await assert.rejects(a.store.append(draft('o', 'during')), { code: 'HUB_ERR_STORE_UNAVAILABLE' });
    await assert.rejects(b.store.read({ afterSeq: 0, limit: 1 }), { code: 'HUB_ERR_STORE_UNAVAILABLE' });
    assert.ok(Date.now() - started < 200, `rejected in ${Date.now() - started} ms`);

    await redis.restart();
    await eventually(() => a.store.isReady() && b.store.isReady(), 'both nodes to reconnect', 10_000);
    for (let i = 0; i < 20; i++) acknowledged.push(await (i % 2 ? b : a).store.append(draft('o', `after-${i}`)));
    for (const { seen } of [a, b]) {
      await eventually(() => seen.length >= acknowledged.length, 'dispatch to resume');
      assert.deepEqual(seqs(seen), seqs(acknowledged), 'every acknowledged message once, in order');
    }
    const history = await a.store.read({ afterSeq: 0, topics: ['o'], limit: 100 });
    assert.deepEqual(history.map((m) => m.data), acknowledged.map((m) => m.data), 'history survived the crash (AOF)');
    assert.ok(a.logs.some((l) => /^warn: Lost the connection to Redis/.test(l)), a.logs.join('\n'));
    assert.ok(a.logs.some((l) => /^info: Connected to Redis/.test(l)), a.logs.join('\n'));
  });

  it('fails what is in flight when Redis dies mid-load and loses nothing that was acknowledged', async (t) => {
    const redis = await startRedis({ persistence: 'aof' });
    t.after(() => redis.stop());
    const a = await node(t, redis.url, { maxMessagesPerTopic: 0 });
    const b = await node(t, redis.url, { maxMessagesPerTopic: 0 });
    const acknowledged: Message[] = [];
    const failed: string[] = [];
    let running = true;
    const load = [a, b].flatMap(({ store }, n) =>
      Array.from({ length: 4 }, async (_, p) => {
        for (let i = 0; running; i++) {
          try {
            acknowledged.push(await store.append(draft('load', `n${n}-p${p}-${i}`)));
          } catch (error) {
            failed.push((error as { code: string }).code);
            if (!store.isReady()) await eventually(() => store.isReady() || !running, 'reconnection', 15_000);
          }
        }
      }),
    );
    await eventually(() => acknowledged.length >= 500, 'some load');
    await redis.kill();
    await eventually(() => failed.length > 0, 'publishes to fail');
    await redis.restart();
    const mark = acknowledged.length;
    await eventually(() => acknowledged.length >= mark + 500, 'publishing to resume', 15_000);
    running = false;
    await Promise.all(load);
    assert.ok(failed.every((code) => code === 'HUB_ERR_STORE_UNAVAILABLE'), `codes: ${[...new Set(failed)].join(', ')}`);

    const ackedSeqs = new Set(seqs(acknowledged));
    for (const { seen } of [a, b]) {
      const maxAcked = Math.max(...ackedSeqs);
      await eventually(() => seen.length > 0 && seen.at(-1)!.seq >= maxAcked, 'dispatch of everything acknowledged');
      const seenSeqs = seqs(seen);
      assert.deepEqual(seenSeqs, [...seenSeqs].sort((x, y) => x - y), 'in order');
      assert.equal(new Set(seenSeqs).size, seenSeqs.length, 'no duplicates');
      const missing = [...ackedSeqs].filter((s) => !seenSeqs.includes(s));
      assert.deepEqual(missing, [], 'every acknowledged message dispatched');
    }
    const stored = new Set(seqs(await a.store.read({ afterSeq: 0, topics: ['load'], limit: 100_000 })));
    assert.deepEqual([...ackedSeqs].filter((s) => !stored.has(s)), [], 'every acknowledged message stored');
  });

  it('starts with Redis down: open() resolves, not ready, logs retries; ready once Redis is up', async (t) => {
    const redis = await startRedis();
    const port = redis.port;
    await redis.stop();
    const { store, logs, seen } = await node(t, `redis://127.0.0.1:${port}`);
    assert.equal(store.isReady(), false);
    await assert.rejects(store.append(draft('late', 'x')), { code: 'HUB_ERR_STORE_UNAVAILABLE', message: /unreachable/ });
    assert.ok(logs.some((l) => /^warn: Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable .*retrying/.test(l)), logs.join('\n'));
    await eventually(() => logs.some((l) => /retrying in \d+ ms \(attempt 2\)/.test(l)), 'a retry line');

    const late = await startRedis({ port });
    t.after(() => late.stop());
    await eventually(() => store.isReady(), 'the store to connect', 10_000);
    const m = await store.append(draft('late', 'y'));
    assert.deepEqual(seqs(seen), [m.seq]);
    assert.ok(logs.some((l) => /^info: Connected to Redis/.test(l)), logs.join('\n'));
  });

  it('rejects a URL with bad credentials at open (HUB_ERR_STORE_OPEN), not retrying forever', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const admin = new Redis(redis.url, { protocol: 2 });
    t.after(() => admin.disconnect());
    await admin.config('SET', 'requirepass', 'secret');
    const store = new RedisStore({ url: `redis://:wrong@127.0.0.1:${redis.port}`, keyPrefix: 'x:', maxMessagesPerTopic: 10, maxAgeMs: 0 });
    await assert.rejects(store.open(), { code: 'HUB_ERR_STORE_OPEN', message: /WRONGPASS|invalid/i });
    await store.close();
  });

  it('after Redis came back empty, old ids are unknown (gap), new seqs are higher, dispatch goes on', async (t) => {
    const redis = await startRedis({ persistence: 'none' });
    t.after(() => redis.stop());
    const a = await node(t, redis.url);
    const b = await node(t, redis.url);
    const old = await a.store.append(draft('e', 'old'));
    await redis.restart();
    await eventually(() => a.store.isReady() && b.store.isReady(), 'reconnection', 10_000);
    const fresh = await b.store.append(draft('e', 'fresh'));
    assert.ok(fresh.seq > old.seq, `${fresh.seq} > ${old.seq}`);
    assert.deepEqual(await a.store.resolveCursor(old.id, ['e']), { afterSeq: 0, gap: true });
    for (const { seen } of [a, b]) {
      await eventually(() => seen.length === 2, 'dispatch');
      assert.deepEqual(seqs(seen), [old.seq, fresh.seq]);
    }
    assert.ok(a.logs.some((l) => /lost its data/.test(l)), a.logs.join('\n'));
  });
});
