import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { openStream, publish, type TestStream } from '../helpers/sse-client.js';
import { inIdOrder, received, startCluster, type Cluster } from './cluster.js';

const subscribeUrl = (base: string, topic: string): string => `${base}/messages/subscribe/${encodeURIComponent(topic)}`;

describe('three hub processes on one Redis: the article API across nodes', () => {
  let redis: TestRedis;
  let cluster: Cluster;
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, 3, ['--retention-count', '100000']);
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  it('reports ready on every node', async () => {
    for (const node of cluster.nodes) {
      const res = await fetch(`${node.url}/readyz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ready', store: 'redis' });
    }
  });

  it('delivers a message published on one node to subscribers on every node', async () => {
    const streams = await Promise.all(cluster.nodes.map((node) => openStream(subscribeUrl(node.url, 'across'))));
    try {
      for (const s of streams) await s.waitForCount(1);
      const published = [];
      for (const [i, node] of cluster.nodes.entries()) {
        published.push({ id: await publish(node.url, 'across', `from node ${i}`), data: `from node ${i}` });
      }
      const expected = inIdOrder(published);
      for (const s of streams) {
        await s.waitForCount(1 + published.length);
        assert.deepEqual(received(s.events), expected);
      }
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('gives every subscriber on every node the same order while every node publishes concurrently', async () => {
    const topic = 'order';
    const streams: TestStream[] = [];
    try {
      for (const node of cluster.nodes) {
        for (let k = 0; k < 2; k++) streams.push(await openStream(subscribeUrl(node.url, topic)));
      }
      for (const s of streams) await s.waitForCount(1);
      const acknowledged: { id: string; data: string }[] = [];
      // Three publishers per node, each waiting for its 200 before the next publish.
      await Promise.all(
        cluster.nodes.flatMap((node, n) =>
          Array.from({ length: 3 }, async (_, p) => {
            for (let i = 0; i < 120; i++) {
              const data = `n${n}-p${p}-${i}`;
              acknowledged.push({ id: await publish(node.url, topic, data), data });
            }
          }),
        ),
      );
      const expected = inIdOrder(acknowledged);
      const lastId = expected.at(-1)!.split(':')[0];
      for (const s of streams) {
        await s.waitFor((events) => events.at(-1)?.id === lastId, 20_000);
        assert.deepEqual(received(s.events), expected, 'all messages, once, in id order');
      }
      // Each publisher's own messages are in its publishing order too (ids increase per publisher).
      for (const s of streams) {
        const byPublisher = new Map<string, number[]>();
        for (const line of received(s.events)) {
          const [, data] = line.split(':');
          const [n, p, i] = data!.split('-');
          const key = `${n}-${p}`;
          byPublisher.set(key, [...(byPublisher.get(key) ?? []), Number(i)]);
        }
        for (const sequence of byPublisher.values()) assert.deepEqual(sequence, [...sequence].sort((x, y) => x - y));
      }
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('resumes on another node after a forced disconnect, with what was published in the gap', async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const first = await openStream(subscribeUrl(a.url, 'roam'));
    await first.waitForCount(1);
    await publish(b.url, 'roam', 'before 1');
    const lastSeen = await publish(c.url, 'roam', 'before 2');
    await first.waitForCount(3);
    first.close();
    const gap = [
      { id: await publish(a.url, 'roam', 'gap 1'), data: 'gap 1' },
      { id: await publish(b.url, 'roam', 'gap 2'), data: 'gap 2' },
      { id: await publish(c.url, 'roam', 'gap 3'), data: 'gap 3' },
    ];
    const second = await openStream(subscribeUrl(b.url, 'roam'), { 'Last-Event-ID': lastSeen });
    try {
      assert.equal(second.headers['replay-gap'], undefined, 'the id is known on every node');
      await second.waitForCount(4);
      const live = { id: await publish(c.url, 'roam', 'live'), data: 'live' };
      await second.waitForCount(5);
      assert.deepEqual(received(second.events), inIdOrder([...gap, live]));
    } finally {
      second.close();
    }
  });

  it('replays exactly on one node while other nodes publish (no gap, no duplicate at the hand-over)', async () => {
    const topic = 'replay-race';
    const published: { id: string; data: string }[] = [];
    let publishing = true;
    const publishers = cluster.nodes.map(async (node, n) => {
      for (let i = 0; publishing && i < 3000; i++) {
        const data = `n${n}-${i}`;
        published.push({ id: await publish(node.url, topic, data), data });
      }
    });
    const resumed: { cursor: string; stream: TestStream }[] = [];
    try {
      for (let k = 0; k < 6; k++) {
        while (published.length < (k + 1) * 60) await new Promise((r) => setImmediate(r));
        const cursor = inIdOrder(published)[k * 40]!.split(':')[0]!;
        const node = cluster.nodes[k % cluster.nodes.length]!;
        resumed.push({ cursor, stream: await openStream(subscribeUrl(node.url, topic), { 'Last-Event-ID': cursor }) });
      }
    } finally {
      publishing = false;
      await Promise.all(publishers);
    }
    const all = inIdOrder(published);
    const lastId = all.at(-1)!.split(':')[0];
    for (const { cursor, stream } of resumed) {
      await stream.waitFor((events) => events.at(-1)?.id === lastId, 20_000);
      assert.deepEqual(received(stream.events), all.filter((line) => Number(line.split(':')[0]) > Number(cursor)), `cursor ${cursor}`);
      stream.close();
    }
  });

  it('shares history and retention: every node reports the same topic info', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await publish(cluster.nodes[i % 3]!.url, 'info', `m${i}`));
    for (const node of cluster.nodes) {
      const info = await (await fetch(`${node.url}/messages/info`)).json();
      assert.equal(info.retained, 5);
      assert.equal(info.firstId, ids[0]);
      assert.equal(info.lastId, ids[4]);
    }
  });
});
