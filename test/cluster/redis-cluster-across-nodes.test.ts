import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { openStream, publish, type TestStream } from '../helpers/sse-client.js';
import { inIdOrder, received, startCluster, type Cluster } from './cluster.js';

const subscribeUrl = (base: string, topic: string): string => `${base}/messages/subscribe/${encodeURIComponent(topic)}`;

describe('two hub processes on a 3-master Redis Cluster (--store redis-cluster://)', () => {
  let redis: TestRedisCluster;
  let hubs: Cluster;
  before(async () => {
    redis = await startRedisCluster();
    // One seed node is enough: the client discovers the other masters.
    const seed = `redis-cluster://127.0.0.1:${redis.masters[1]!.port}`;
    hubs = await startCluster(seed, 2, ['--retention-count', '100000']);
  });
  after(async () => {
    await hubs?.stop();
    await redis?.stop();
  });

  it('reports ready on both nodes', async () => {
    for (const node of hubs.nodes) {
      const res = await fetch(`${node.url}/readyz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ready', store: 'redis' });
    }
  });

  it('delivers a message published on node A to a subscriber on node B, with a decimal id', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const onB = await openStream(subscribeUrl(b.url, 'across'));
    const onA = await openStream(subscribeUrl(a.url, 'across'));
    try {
      await onB.waitForCount(1);
      await onA.waitForCount(1);
      const published = [];
      for (let i = 0; i < 5; i++) published.push({ id: await publish(a.url, 'across', `from A ${i}`), data: `from A ${i}` });
      assert.ok(published.every((m) => /^[1-9][0-9]*$/.test(m.id)), 'ids are decimal seqs, as with redis://');
      for (const s of [onB, onA]) {
        await s.waitForCount(1 + published.length);
        assert.deepEqual(received(s.events), inIdOrder(published));
      }
    } finally {
      onB.close();
      onA.close();
    }
  });

  it('resumes with Last-Event-ID on the other node without a gap or a duplicate, while both publish', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const topic = 'roam';
    const first = await openStream(subscribeUrl(a.url, topic));
    await first.waitForCount(1);
    await publish(b.url, topic, 'before 1');
    const lastSeen = await publish(a.url, topic, 'before 2');
    await first.waitForCount(3);
    first.close();
    const published: { id: string; data: string }[] = [];
    let publishing = true;
    // Both nodes keep publishing while the subscriber reconnects and replays on B.
    const publishers = hubs.nodes.map(async (node, n) => {
      for (let i = 0; publishing && i < 2000; i++) {
        const data = `n${n}-${i}`;
        published.push({ id: await publish(node.url, topic, data), data });
      }
    });
    let second: TestStream | undefined;
    try {
      while (published.length < 50) await new Promise((resolve) => setImmediate(resolve));
      second = await openStream(subscribeUrl(b.url, topic), { 'Last-Event-ID': lastSeen });
      assert.equal(second.headers['replay-gap'], undefined, 'the id is known on every node');
      while (published.length < 150) await new Promise((resolve) => setImmediate(resolve));
    } finally {
      publishing = false;
      await Promise.all(publishers);
    }
    const expected = inIdOrder(published);
    const lastId = expected.at(-1)!.split(':')[0];
    const resumed = second!;
    await resumed.waitFor((events) => events.at(-1)?.id === lastId, 20_000);
    assert.deepEqual(received(resumed.events), expected, 'every message after the cursor, once, in id order');
    resumed.close();
  });

  it('keeps the whole data set under one hash tag, in one slot of one master', async () => {
    const slots = new Set<number>();
    let mastersWithKeys = 0;
    let keys = 0;
    for (const master of redis.masters) {
      const client = new Redis({ port: master.port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
      try {
        await client.connect();
        const found = await client.keys(`*${hubs.prefix}*`);
        if (found.length > 0) mastersWithKeys++;
        keys += found.length;
        for (const key of found) {
          assert.ok(key.startsWith(`{${hubs.prefix}}`), `${key} carries the prefix as its hash tag`);
          slots.add(Number(await client.call('CLUSTER', 'KEYSLOT', key)));
        }
      } finally {
        client.disconnect();
      }
    }
    assert.ok(keys >= 5, `the data set has its keys (${keys})`);
    assert.equal(mastersWithKeys, 1);
    assert.equal(slots.size, 1);
  });
});
