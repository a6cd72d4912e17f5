import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startRedis } from '../helpers/redis-server.js';
import { eventually, isMessage, openStream } from '../helpers/sse-client.js';
import { inIdOrder, received, startCluster, tryPublish } from './cluster.js';

describe('a hub process killed with SIGKILL while the others serve', () => {
  it('keeps the other nodes publishing and delivering; its subscribers resume on another node', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const cluster = await startCluster(redis.url, 3, ['--retention-count', '100000']);
    t.after(() => cluster.stop());
    const [doomed, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];

    const onDoomed = await openStream(`${doomed.url}/messages/subscribe/crash`);
    const survivors = [await openStream(`${b.url}/messages/subscribe/crash`), await openStream(`${c.url}/messages/subscribe/crash`)];
    t.after(() => [onDoomed, ...survivors].forEach((s) => s.close()));
    for (const s of [onDoomed, ...survivors]) await s.waitForCount(1);

    const acknowledged: { id: string; data: string }[] = [];
    const failures: string[] = [];
    let running = true;
    const publishers = [b, c].flatMap((node, n) =>
      Array.from({ length: 2 }, async (_, p) => {
        for (let i = 0; running; i++) {
          const data = `n${n}-p${p}-${i}`;
          const res = await tryPublish(node.url, 'crash', data);
          if (res.status === 200) acknowledged.push({ id: res.id!, data });
          else failures.push(`${res.status} ${res.code}`);
        }
      }),
    );

    await onDoomed.waitForCount(101);
    doomed.child.kill('SIGKILL');
    assert.equal(await doomed.exited, 'SIGKILL');
    await onDoomed.ended;
    const lastSeenOnDoomed = onDoomed.events.filter(isMessage).at(-1)!.id!;
    const mark = acknowledged.length;
    // The survivors go on: publish and deliver well past the crash.
    await eventually(
      () => {
        if (failures.length > 0) throw new Error(`publishes failed: ${failures.slice(0, 3).join(', ')}`);
        return acknowledged.length >= mark + 300;
      },
      15_000,
      'the survivors to keep publishing',
    );
    // The doomed node's subscriber comes back on node b with its last id.
    const resumed = await openStream(`${b.url}/messages/subscribe/crash`, { 'Last-Event-ID': lastSeenOnDoomed });
    t.after(() => resumed.close());
    assert.equal(resumed.headers['replay-gap'], undefined);
    running = false;
    await Promise.all(publishers);
    assert.deepEqual(failures, []);

    const expected = inIdOrder(acknowledged);
    const lastId = expected.at(-1)!.split(':')[0];
    for (const s of survivors) {
      await s.waitFor((events) => events.at(-1)?.id === lastId, 20_000);
      assert.deepEqual(received(s.events), expected);
    }
    await resumed.waitFor((events) => events.at(-1)?.id === lastId, 20_000);
    const before = received(onDoomed.events);
    assert.deepEqual([...before, ...received(resumed.events)], expected, 'nothing lost or repeated across the crash');
  });
});
