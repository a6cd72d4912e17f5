import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startRedis } from '../helpers/redis-server.js';
import { eventually, isMessage, openStream, post } from '../helpers/sse-client.js';
import { startCluster, tryPublish } from './cluster.js';

describe('an acknowledged consumer on several hub processes (Redis)', () => {
  it('created on one node, its messages are held by another after the first is killed, and replayed there', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const cluster = await startCluster(redis.url, 2, ['--retention-count', '2']);
    t.after(() => cluster.stop());
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];

    const onA = await openStream(`${a.url}/messages/subscribe/shared?consumer=mover`);
    await onA.waitForCount(1);
    const first = await tryPublish(b.url, 'shared', 'first');
    await onA.waitForCount(2);
    const acked = await post(`${b.url}/messages/shared/consumers/mover/ack`, JSON.stringify({ id: first.id }), { 'content-type': 'application/json' });
    assert.equal(acked.status, 200, 'any node acknowledges');
    a.child.kill('SIGKILL');
    assert.equal(await a.exited, 'SIGKILL');

    // Only b is left to hold: once it learned of the consumer, its probes count as pending.
    const published: string[] = [];
    await eventually(async () => {
      published.push((await tryPublish(b.url, 'shared', `probe ${published.length}`)).id!);
      const info = (await (await fetch(`${b.url}/messages/shared/consumers/mover`)).json()) as { pending: number };
      return info.pending > 0;
    }, 10_000, 'b holding for the consumer');
    for (const m of ['x', 'y', 'z']) published.push((await tryPublish(b.url, 'shared', m)).id!);

    const info = (await (await fetch(`${b.url}/messages/shared/consumers/mover`)).json()) as { pending: number };
    const onB = await openStream(`${b.url}/messages/subscribe/shared?consumer=mover`);
    await onB.waitForCount(1 + info.pending);
    const replayed = onB.events.filter(isMessage);
    assert.deepEqual(replayed.slice(-3).map((e) => e.data), ['x', 'y', 'z'], 'held past the retention of 2, in order');
    assert.deepEqual(replayed.map((e) => e.id), published.slice(published.length - info.pending));
    onB.close();
  });
});
