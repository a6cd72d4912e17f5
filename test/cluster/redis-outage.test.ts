import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawnHub } from '../helpers/hub-process.js';
import { startRedis } from '../helpers/redis-server.js';
import { eventually, openStream, type TestStream } from '../helpers/sse-client.js';
import { inIdOrder, received, startCluster, tryPublish } from './cluster.js';

const readyStatus = async (base: string): Promise<number> => (await fetch(`${base}/readyz`)).status;

describe('hub processes while Redis goes away and comes back', () => {
  it('answers 503 during the outage, keeps subscribers open, loses and repeats nothing acknowledged', async (t) => {
    // AOF with fsync always: a SIGKILLed Redis keeps everything it acknowledged.
    const redis = await startRedis({ persistence: 'aof' });
    t.after(() => redis.stop());
    const cluster = await startCluster(redis.url, 2, ['--heartbeat-interval', '100ms', '--retention-count', '100000']);
    t.after(() => cluster.stop());
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];

    const streams: TestStream[] = [];
    for (const node of [a, b, a, b]) streams.push(await openStream(`${node.url}/messages/subscribe/outage`));
    t.after(() => streams.forEach((s) => s.close()));
    for (const s of streams) await s.waitForCount(1);

    const acknowledged: { id: string; data: string }[] = [];
    const refusals: { status: number; code?: string | undefined }[] = [];
    let running = true;
    const publishers = [a, b].flatMap((node, n) =>
      Array.from({ length: 3 }, async (_, p) => {
        for (let i = 0; running; i++) {
          const data = `n${n}-p${p}-${i}`;
          const res = await tryPublish(node.url, 'outage', data).catch((): Awaited<ReturnType<typeof tryPublish>> => ({ status: 0, code: 'network' }));
          if (res.status === 200) acknowledged.push({ id: res.id!, data });
          else {
            refusals.push(res);
            // Outage: slow down rather than spin on 503s (the wait ends as soon as the node is ready).
            await eventually(async () => !running || (await readyStatus(node.url)) === 200, 20_000, 'the node to be ready');
          }
        }
      }),
    );

    await eventually(() => acknowledged.length >= 200, 10_000, 'load before the outage');
    await redis.kill();
    await eventually(() => refusals.length > 0, 10_000, 'a refused publish');
    for (const node of [a, b]) await eventually(async () => (await readyStatus(node.url)) === 503, 10_000, '/readyz to say not ready');
    const duringOutage = await tryPublish(b.url, 'outage', 'refused');
    assert.equal(duringOutage.status, 503);
    assert.equal(duringOutage.code, 'HUB_ERR_STORE_UNAVAILABLE');
    // Subscribers stay connected and keep getting heartbeats.
    const heartbeats = streams.map((s) => s.comments.length);
    await eventually(() => streams.every((s, i) => s.comments.length >= heartbeats[i]! + 2), 5000, 'heartbeats during the outage');
    assert.equal(await Promise.race([streams[0]!.ended.then(() => 'ended'), Promise.resolve('open')]), 'open');

    await redis.restart();
    for (const node of [a, b]) await eventually(async () => (await readyStatus(node.url)) === 200, 15_000, '/readyz to recover');
    const mark = acknowledged.length;
    await eventually(() => acknowledged.length >= mark + 200, 15_000, 'publishing to resume');
    running = false;
    await Promise.all(publishers);

    assert.ok(refusals.every((r) => r.status === 503 && r.code === 'HUB_ERR_STORE_UNAVAILABLE'), JSON.stringify(refusals.slice(0, 5)));
    const expected = inIdOrder(acknowledged);
    const lastId = expected.at(-1)!.split(':')[0];
    for (const s of streams) {
      await s.waitFor((events) => events.some((e) => e.id === lastId), 20_000);
      const got = received(s.events);
      assert.equal(new Set(got).size, got.length, 'no duplicates');
      assert.deepEqual(got, [...got].sort((x, y) => Number(x.split(':')[0]) - Number(y.split(':')[0])), 'in id order');
      const have = new Set(got);
      assert.deepEqual(expected.filter((m) => !have.has(m)), [], 'every acknowledged message delivered');
      // Anything else delivered is a publish whose reply was lost with the connection: never
      // acknowledged, but stored, so every node delivers it alike.
      assert.deepEqual(got, received(streams[0]!.events).slice(0, got.length), 'every subscriber saw the same sequence');
    }
    // And the history survived: a late subscriber replays everything acknowledged.
    const late = await openStream(`${b.url}/messages/subscribe/outage?lastEventId=earliest`);
    t.after(() => late.close());
    await late.waitFor((events) => events.some((e) => e.id === lastId), 20_000);
    const replayed = new Set(received(late.events));
    assert.deepEqual(expected.filter((m) => !replayed.has(m)), []);
  });

  it('starts with Redis down: listens, /readyz 503 with retry log lines, ready once Redis is up', async (t) => {
    const probe = await startRedis();
    const port = probe.port;
    await probe.stop();
    const hub = await spawnHub(['--store', `redis://127.0.0.1:${port}`, '--log-level', 'info']);
    t.after(async () => {
      hub.child.kill('SIGKILL');
      await hub.exited;
    });
    let stdout = '';
    hub.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    assert.equal(await readyStatus(hub.url), 503);
    assert.equal((await fetch(`${hub.url}/healthz`)).status, 200, 'alive, just not ready');
    const refused = await tryPublish(hub.url, 't', 'x');
    assert.equal(refused.status, 503);
    assert.equal(refused.code, 'HUB_ERR_STORE_UNAVAILABLE');
    await eventually(() => /"component":"redis-store".*unreachable .*retrying in \d+ ms/.test(stdout), 10_000, 'a retry log line');

    const redis = await startRedis({ port });
    t.after(() => redis.stop());
    await eventually(async () => (await readyStatus(hub.url)) === 200, 15_000, '/readyz to turn ready');
    assert.equal((await tryPublish(hub.url, 't', 'x')).status, 200);
    await eventually(() => /Connected to Redis at redis:\/\/127\.0\.0\.1/.test(stdout), 5000, 'the connected log line');
  });
});
