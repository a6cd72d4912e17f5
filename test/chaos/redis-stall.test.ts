/**
 * Redis stalling rather than dying (SIGSTOP: the process is there, its socket accepts, nothing
 * answers), which the outage tests (Redis killed) do not cover: publishes fail with 503
 * HUB_ERR_STORE_UNAVAILABLE within the command timeout instead of hanging, /readyz says not
 * ready, subscribers stay connected and keep getting heartbeats; after SIGCONT the hub is ready
 * again and every acknowledged message reaches every subscriber once, in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { spawnHub } from '../helpers/hub-process.js';
import { startRedis } from '../helpers/redis-server.js';
import { eventually, isMessage, openStream, post, type TestStream } from '../helpers/sse-client.js';

const readyStatus = async (base: string): Promise<number> => (await fetch(`${base}/readyz`)).status;

describe('Redis stalls (SIGSTOP) under a hub process', () => {
  it('publishes fail fast with 503, subscribers stay, everything acknowledged arrives after SIGCONT', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const admin = new Redis(redis.url, { protocol: 2 });
    const pid = Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1]);
    admin.disconnect();
    assert.ok(pid > 0, 'redis-server pid');
    let stopped = false;
    t.after(() => {
      if (stopped) process.kill(pid, 'SIGCONT');
    });

    const hub = await spawnHub(['--store', redis.url, '--redis-key-prefix', `stall-${process.pid}:`, '--heartbeat-interval', '200ms']);
    t.after(async () => {
      hub.child.kill('SIGKILL');
      await hub.exited;
    });
    const streams: TestStream[] = [await openStream(`${hub.url}/messages/subscribe/stall`), await openStream(`${hub.url}/.well-known/mercure?match=stall`)];
    t.after(() => streams.forEach((s) => s.close()));
    await streams[0]!.waitForCount(1);

    const acknowledged: string[] = [];
    const refused: { status: number; code: string; ms: number; data: string }[] = [];
    const publishOne = async (data: string): Promise<void> => {
      const started = performance.now();
      const res = await post(`${hub.url}/messages/stall`, data, { 'content-type': 'text/plain' });
      if (res.status === 200) acknowledged.push(res.json.id);
      else refused.push({ status: res.status, code: res.json?.error?.code, ms: performance.now() - started, data });
    };
    for (let i = 0; i < 10; i++) await publishOne(`before ${i}`);
    assert.equal(acknowledged.length, 10);

    process.kill(pid, 'SIGSTOP');
    stopped = true;
    const heartbeats = streams.map((s) => s.comments.length);
    // Concurrent publishes during the stall: each answered, none later than the command timeout (2 s) plus slack.
    await Promise.all(Array.from({ length: 8 }, (_, i) => publishOne(`during ${i}`)));
    assert.equal(refused.length, 8, `all refused during the stall: ${JSON.stringify(refused)}`);
    for (const r of refused) {
      assert.equal(r.status, 503, JSON.stringify(r));
      assert.equal(r.code, 'HUB_ERR_STORE_UNAVAILABLE');
      assert.ok(r.ms < 4500, `answered in ${r.ms.toFixed(0)} ms`);
    }
    t.diagnostic(`publishes during the stall answered 503 in ${Math.max(...refused.map((r) => r.ms)).toFixed(0)} ms at most`);
    await eventually(async () => (await readyStatus(hub.url)) === 503, 10_000, '/readyz to say not ready');
    assert.equal((await fetch(`${hub.url}/healthz`)).status, 200);
    await eventually(() => streams.every((s, i) => s.comments.length >= heartbeats[i]! + 3), 5000, 'heartbeats during the stall');
    for (const s of streams) assert.equal(await Promise.race([s.ended.then(() => 'ended'), Promise.resolve('open')]), 'open');

    process.kill(pid, 'SIGCONT');
    stopped = false;
    await eventually(async () => (await readyStatus(hub.url)) === 200, 15_000, '/readyz to recover');
    for (let i = 0; i < 10; i++) await publishOne(`after ${i}`);
    assert.equal(acknowledged.length, 20, `publishing resumed: ${JSON.stringify(refused.slice(8))}`);

    // Every acknowledged message once, in id order. A refused publish may still have been
    // stored (Redis ran the queued command when it woke: the outcome of a command in flight is
    // unknown, as the README says); such a message is delivered like any other.
    const last = acknowledged.at(-1)!;
    for (const s of streams) {
      await s.waitFor((events) => events.some((e) => e.id === last), 10_000);
      const ids = s.events.filter(isMessage).map((e) => e.id!);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      assert.deepEqual(ids, [...ids].sort((a, b) => Number(a) - Number(b)), 'in id order');
      assert.deepEqual(acknowledged.filter((id) => !ids.includes(id)), [], 'every acknowledged message delivered');
      const extra = s.events.filter((e) => isMessage(e) && !acknowledged.includes(e.id)).map((e) => e.data);
      assert.ok(extra.every((data) => data.startsWith('during ')), `only refused publishes may appear besides the acknowledged: ${JSON.stringify(extra)}`);
    }
  });
});
