import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { eventually, openStream, type TestStream } from '../helpers/sse-client.js';
import { inIdOrder, received, startCluster, tryPublish } from './cluster.js';

describe('two hub processes on a Redis Cluster whose master is killed and restarted', () => {
  it('answers 503 (publishes and /readyz) while the master of the data set is down, then loses and repeats nothing acknowledged', async (t) => {
    const redis = await startRedisCluster();
    t.after(() => redis.stop());
    const hubs = await startCluster(redis.url, 2, ['--heartbeat-interval', '100ms', '--retention-count', '100000']);
    t.after(() => hubs.stop());
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const streams: TestStream[] = [];
    for (const node of [a, b]) streams.push(await openStream(`${node.url}/messages/subscribe/loss`));
    t.after(() => streams.forEach((s) => s.close()));
    for (const s of streams) await s.waitForCount(1);

    const acknowledged: { id: string; data: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await tryPublish([a, b][i % 2]!.url, 'loss', `before ${i}`);
      assert.equal(res.status, 200);
      acknowledged.push({ id: res.id!, data: `before ${i}` });
    }

    // The master holding the data set's slot (AOF, fsync always: a SIGKILL loses nothing).
    let holder: (typeof redis.masters)[number] | undefined;
    for (const master of redis.masters) {
      const client = new Redis({ host: '127.0.0.1', port: master.port, lazyConnect: true, retryStrategy: () => null });
      try {
        await client.connect();
        // KEYS is answered by each master for its own keys (EXISTS would be redirected).
        if ((await client.keys(`{${hubs.prefix}}seq`)).length === 1) holder = master;
      } finally {
        client.disconnect();
      }
    }
    assert.ok(holder, 'one master holds the data set');
    await holder.kill();
    const started = Date.now();
    const refused = await tryPublish(b.url, 'loss', 'refused');
    assert.equal(refused.status, 503);
    assert.equal(refused.code, 'HUB_ERR_STORE_UNAVAILABLE');
    assert.ok(Date.now() - started < 5000, `refused within seconds (${Date.now() - started} ms)`);
    // The cluster client is still connected to the other masters; the hub must not say ready.
    for (const node of [a, b]) await eventually(async () => (await fetch(`${node.url}/readyz`)).status === 503, 10_000, '/readyz to say not ready');

    await holder.restart();
    for (const node of [a, b]) await eventually(async () => (await fetch(`${node.url}/readyz`)).status === 200, 30_000, '/readyz to recover');
    for (const node of [a, b]) {
      await eventually(async () => (await tryPublish(node.url, 'loss', 'probe')).status === 200, 30_000, 'publishing to work again');
    }
    for (let i = 0; i < 20; i++) {
      const res = await tryPublish([a, b][i % 2]!.url, 'loss', `after ${i}`);
      assert.equal(res.status, 200);
      acknowledged.push({ id: res.id!, data: `after ${i}` });
    }
    const lastId = acknowledged.at(-1)!.id;
    const expected = inIdOrder(acknowledged);
    for (const s of streams) {
      await s.waitFor((events) => events.some((e) => e.id === lastId), 20_000);
      const got = received(s.events).filter((line) => !line.endsWith(':probe'));
      assert.deepEqual(got, expected, 'every acknowledged message once, in id order');
    }
    // Resuming on the other node from before the outage replays everything acknowledged since.
    const resumed = await openStream(`${b.url}/messages/subscribe/loss`, { 'Last-Event-ID': acknowledged[4]!.id });
    t.after(() => resumed.close());
    await resumed.waitFor((events) => events.some((e) => e.id === lastId), 20_000);
    assert.equal(resumed.headers['replay-gap'], undefined);
    assert.deepEqual(
      received(resumed.events).filter((line) => !line.endsWith(':probe')),
      expected.slice(5),
    );
  });
});
