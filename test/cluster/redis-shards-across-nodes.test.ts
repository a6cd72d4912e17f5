import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { shardOf } from '../../src/store/redis/shard-of.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { eventually, isGreeting, openStream, post, publish, type ReceivedEvent, type TestStream } from '../helpers/sse-client.js';
import { startCluster, tryPublish, type Cluster } from './cluster.js';

const SHARDS = 3;
const subscribeUrl = (base: string, topic: string): string => `${base}/messages/subscribe/${encodeURIComponent(topic)}`;
const mercureUrl = (base: string, topics: readonly string[]): string => `${base}/.well-known/mercure?${topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&')}`;
/** The data of the message events, in arrival order. */
const dataOf = (events: readonly ReceivedEvent[]): string[] => events.filter((e) => e.id !== undefined && !isGreeting(e) && e.event !== 'gap').map((e) => e.data);
/** A topic name with this prefix on the given shard. */
function topicOn(shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (shardOf(`${prefix}-${i}`, SHARDS) === shard) return `${prefix}-${i}`;
}
async function mercurePublish(base: string, topics: readonly string[], data: string): Promise<string> {
  const body = new URLSearchParams([...topics.map((t) => ['topic', t]), ['data', data]]).toString();
  const res = await post(`${base}/.well-known/mercure`, body, { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(res.status, 200, res.text);
  return res.text;
}

const SENTINEL = 'sentinel ';
let sentinels = 0;
/**
 * Publishes one message on each of `topics` (one topic per shard, all of them needed by
 * `stream`) and waits until `stream` got them all. A node's loop dispatches each shard in
 * order, so whatever a shard had for the stream before its sentinel has reached it by then:
 * what the stream holds now is all it will get of the messages published before. Resolves
 * with the sentinels' data.
 */
async function drain(base: string, stream: TestStream, topics: readonly string[]): Promise<string[]> {
  const sent: string[] = [];
  for (const topic of topics) {
    const data = `${SENTINEL}${++sentinels} ${topic}`;
    await mercurePublish(base, [topic], data);
    sent.push(data);
  }
  await stream.waitFor((events) => sent.every((data) => dataOf(events).includes(data)));
  return sent;
}
/** The messages of `data` other than sentinels, in order, and the sentinels, sorted. */
function split(data: readonly string[]): { messages: string[]; sentinels: string[] } {
  return { messages: data.filter((d) => !d.startsWith(SENTINEL)), sentinels: data.filter((d) => d.startsWith(SENTINEL)).sort() };
}

/** Each master's keys under the deployment's prefix (KEYS answers for the master's own keys only). */
async function keysPerMaster(redis: TestRedisCluster, prefix: string): Promise<string[][]> {
  return Promise.all(
    redis.masters.map(async (master) => {
      const client = new Redis({ host: '127.0.0.1', port: master.port, lazyConnect: true, retryStrategy: () => null });
      try {
        await client.connect();
        return await client.keys(`{${prefix}*`);
      } finally {
        client.disconnect();
      }
    }),
  );
}

/**
 * A key prefix whose shard hash tags `{<prefix><k>}` fall on three different masters: what an
 * operator arranges with the slot placement (docs/scaling.md), found here by trying prefixes.
 */
async function spreadPrefix(redis: TestRedisCluster): Promise<string> {
  const client = new Redis({ host: '127.0.0.1', port: redis.masters[0]!.port, lazyConnect: true, retryStrategy: () => null });
  try {
    await client.connect();
    const ranges = (await client.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    const masterOf = (slot: number): number => ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
    for (let i = 0; ; i++) {
      const prefix = `shards-${i}-${process.pid}:`;
      const masters = new Set<number>();
      for (let shard = 0; shard < SHARDS; shard++) masters.add(masterOf((await client.cluster('KEYSLOT', `{${prefix}${shard}}seq`)) as number));
      if (masters.size === SHARDS) return prefix;
    }
  } finally {
    client.disconnect();
  }
}

/** The last command of each connection of the hub process `pid`, by role, on every master. */
async function lastCommandsOf(redis: TestRedisCluster, pid: number): Promise<{ role: string; cmd: string }[]> {
  const out: { role: string; cmd: string }[] = [];
  for (const master of redis.masters) {
    const client = new Redis({ host: '127.0.0.1', port: master.port, lazyConnect: true, retryStrategy: () => null });
    try {
      await client.connect();
      for (const line of ((await client.client('LIST')) as string).split('\n')) {
        if (!line) continue;
        const name = /name=(\S*)/.exec(line)?.[1] ?? '';
        if (!name.includes(`:${pid}:`)) continue;
        out.push({ role: name.slice(name.lastIndexOf(':') + 1), cmd: /cmd=(\S*)/.exec(line)?.[1] ?? '' });
      }
    } finally {
      client.disconnect();
    }
  }
  return out;
}

describe('two hub processes on a 3-master Redis Cluster with --redis-shards 3', () => {
  let redis: TestRedisCluster;
  let hubs: Cluster;
  before(async () => {
    redis = await startRedisCluster();
    hubs = await startCluster(redis.url, 2, ['--redis-shards', String(SHARDS), '--retention-count', '100000', '--anonymous', '--heartbeat-interval', '200ms'], await spreadPrefix(redis));
  });
  after(async () => {
    await hubs?.stop();
    await redis?.stop();
  });

  it('a node with no subscribers reads nothing while the other publishes; it reads once it has one', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const topic = topicOn(1, 'idle');
    const onA = await openStream(subscribeUrl(a.url, topic));
    try {
      await onA.waitForCount(1);
      for (let i = 0; i < 100; i++) await publish(a.url, topic, `busy ${i}`);
      await onA.waitForCount(101);
      const readersOf = async (pid: number) => (await lastCommandsOf(redis, pid)).filter((c) => c.role === 'reader');
      assert.ok((await readersOf(a.child.pid!)).some((c) => c.cmd === 'xread'), 'A reads the shard of its subscriber');
      const idle = await readersOf(b.child.pid!);
      assert.ok(idle.length >= SHARDS, 'B has a reader connection per shard');
      assert.deepEqual(idle.filter((c) => c.cmd === 'xread'), [], 'B never read a stream');
      // The same check sees it once B has a subscriber of that shard.
      const onB = await openStream(subscribeUrl(b.url, topic));
      try {
        await onB.waitForCount(1);
        await publish(a.url, topic, 'now B too');
        await onB.waitForCount(2);
        assert.deepEqual(dataOf(onB.events), ['now B too']);
        const reading = await readersOf(b.child.pid!);
        assert.equal(reading.filter((c) => c.cmd === 'xread').length, 1, 'B reads the one shard it needs');
      } finally {
        onB.close();
      }
    } finally {
      onA.close();
    }
  });

  it('spreads the shards over all three masters and delivers across nodes with position ids', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const topics = [0, 1, 2].map((shard) => topicOn(shard, 'spread'));
    const streams = await Promise.all(topics.map((topic) => openStream(subscribeUrl(b.url, topic))));
    try {
      for (const s of streams) await s.waitForCount(1);
      for (const [i, topic] of topics.entries()) {
        const id = await publish(a.url, topic, `to ${topic}`);
        assert.match(id, new RegExp(`^v1\\.${i}:[0-9a-z]+$`), 'the publish id names the position on the topic\'s shard');
      }
      for (const [i, s] of streams.entries()) {
        await s.waitForCount(2).catch(async (error: Error) => {
          const state = await Promise.race([s.ended.then(() => 'ended'), new Promise((resolve) => setTimeout(resolve, 10, 'open'))]);
          throw new Error(`${error.message}; the stream is ${String(state)}; B's connections: ${JSON.stringify(await lastCommandsOf(redis, b.child.pid!))}`);
        });
        assert.deepEqual(dataOf(s.events), [`to ${topics[i]}`]);
        assert.match(s.events[1]!.id!, /^v1\./);
      }
      const keys = await keysPerMaster(redis, hubs.prefix);
      const shardsOnMaster = keys.map((list) => [...new Set(list.map((key) => /^\{[^}]*?(\d+)\}/.exec(key)?.[1]))].sort());
      assert.deepEqual(shardsOnMaster.flat().sort(), ['0', '1', '2'], `each shard on one master: ${JSON.stringify(shardsOnMaster)}`);
      assert.ok(shardsOnMaster.every((s) => s.length === 1), `every master holds one shard: ${JSON.stringify(shardsOnMaster)}`);
    } finally {
      streams.forEach((s) => s.close());
    }
  });

  it('resumes one topic on the other node from the last id seen, while both publish: no gap, no duplicate', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const topic = topicOn(2, 'roam');
    const first = await openStream(subscribeUrl(a.url, topic));
    await first.waitForCount(1);
    await publish(b.url, topic, 'before 1');
    await publish(a.url, topic, 'before 2');
    await first.waitForCount(3);
    const lastSeen = first.events.at(-1)!.id!;
    first.close();
    const published: string[] = [];
    let publishing = true;
    const publishers = hubs.nodes.map(async (node, n) => {
      for (let i = 0; publishing && i < 2000; i++) {
        await publish(node.url, topic, `n${n}-${i}`);
        published.push(`n${n}-${i}`);
      }
    });
    let second: TestStream | undefined;
    try {
      while (published.length < 30) await new Promise((resolve) => setTimeout(resolve, 5));
      second = await openStream(subscribeUrl(b.url, topic), { 'Last-Event-ID': lastSeen });
      assert.equal(second.headers['replay-gap'], undefined, 'the id is known on every node');
      while (published.length < 100) await new Promise((resolve) => setTimeout(resolve, 5));
    } finally {
      publishing = false;
      await Promise.all(publishers);
    }
    try {
      await second.waitFor((events) => dataOf(events).length >= published.length, 20_000);
      const got = dataOf(second.events);
      assert.deepEqual([...got].sort(), [...published].sort(), 'every message after the cursor once');
      for (const n of [0, 1]) {
        const mine = got.filter((d) => d.startsWith(`n${n}-`)).map((d) => Number(d.slice(3)));
        assert.deepEqual(mine, [...mine].sort((x, y) => x - y), 'in publish order per publisher');
      }
    } finally {
      second.close();
    }
  });

  it('a multi-topic subscription over three shards gets a message on several of them once, and resumes from any id on the other node', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const [x, y, z] = [0, 1, 2].map((shard) => topicOn(shard, 'multi')) as [string, string, string];
    const stream = await openStream(mercureUrl(a.url, [x, y, z]));
    const expected: string[] = [];
    const drained: string[] = [];
    // The position of the leading frame (an id without data) and of every event, as an
    // EventSource holds them.
    const ids: string[] = [];
    try {
      await eventually(() => stream.lastEventId() !== undefined, 5000, 'the leading frame');
      ids.push(stream.lastEventId()!);
      const sends: [string[], string][] = [
        [[x], 'x1'], [[y, z], 'yz1'], [[z], 'z1'], [[x, y, z], 'xyz1'], [[y], 'y1'], [[z, x], 'zx1'], [[x], 'x2'],
      ];
      for (const [topics, data] of sends) {
        await mercurePublish([a, b][expected.length % 2]!.url, topics, data);
        expected.push(data);
        await stream.waitFor((events) => dataOf(events).length >= expected.length);
        ids.push(stream.lastEventId()!);
      }
      // Published after every id below: each resume gets them too.
      drained.push(...(await drain(b.url, stream, [x, y, z])));
      assert.deepEqual(split(dataOf(stream.events)), { messages: expected, sentinels: [...drained].sort() }, 'each message once, in publish order');
    } finally {
      stream.close();
    }
    // Resume on B from every id A gave (the leading frame's too): exactly what followed it.
    assert.ok(ids.every((id) => id.startsWith('v1.') || id === 'earliest'), `position ids: ${ids.join(' ')}`);
    for (const [i, id] of ids.entries()) {
      const resumed = await openStream(mercureUrl(b.url, [x, y, z]), { 'Last-Event-ID': id });
      try {
        assert.equal(resumed.headers['mercure-last-event-id'], id, 'resumed without a gap');
        drained.push(...(await drain(a.url, resumed, [x, y, z])));
        assert.deepEqual(split(dataOf(resumed.events)), { messages: expected.slice(i), sentinels: [...drained].sort() }, `resumed after id #${i} (${id})`);
      } finally {
        resumed.close();
      }
    }
  });

  it('a * subscription resumes on the other node from a fresh greeting id and from a live id (EventSource-style reconnect)', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const fresh = await openStream(mercureUrl(b.url, ['*']));
    await eventually(() => fresh.lastEventId() !== undefined, 5000, 'the leading frame');
    const greetingId = fresh.lastEventId()!;
    fresh.close();
    const topics = [0, 1, 2, 0].map((shard, i) => topicOn(shard, `star${i}`));
    const sent: string[] = [];
    for (const [i, topic] of topics.entries()) {
      await mercurePublish(a.url, i === 3 ? [topic, topics[1]!] : [topic], `star ${i}`);
      sent.push(`star ${i}`);
    }
    const sentinelTopics = [0, 1, 2].map((shard) => topicOn(shard, 'star-sentinel'));
    const resumed = await openStream(mercureUrl(a.url, ['*']), { 'Last-Event-ID': greetingId });
    let midId: string;
    const drained: string[] = [];
    try {
      drained.push(...(await drain(b.url, resumed, sentinelTopics)));
      assert.equal(resumed.headers['mercure-last-event-id'], greetingId, 'no gap');
      assert.deepEqual(split(dataOf(resumed.events)), { messages: sent, sentinels: [...drained].sort() }, 'from the greeting: everything since, once');
      midId = resumed.events.filter((e) => e.data === 'star 1')[0]!.id!;
    } finally {
      resumed.close();
    }
    const again = await openStream(mercureUrl(b.url, ['*']), { 'Last-Event-ID': midId });
    try {
      drained.push(...(await drain(a.url, again, sentinelTopics)));
      assert.deepEqual(split(dataOf(again.events)), { messages: sent.slice(2), sentinels: [...drained].sort() }, 'from a replayed id: what followed it');
    } finally {
      again.close();
    }
  });

  it('takes a decimal id of the single stream as a gap, and refuses custom ids of the position form', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const topic = topicOn(0, 'legacy');
    await publish(a.url, topic, 'kept');
    const resumed = await openStream(subscribeUrl(b.url, topic), { 'Last-Event-ID': '1700000000000001' });
    try {
      await resumed.waitFor((events) => dataOf(events).length >= 1);
      assert.equal(resumed.headers['replay-gap'], 'true', 'told of a possible gap');
      assert.deepEqual(dataOf(resumed.events), ['kept'], 'replays what the shard retains');
    } finally {
      resumed.close();
    }
    const body = new URLSearchParams([['topic', topic], ['data', 'x'], ['id', 'v1.0:abc']]).toString();
    const refused = await post(`${a.url}/.well-known/mercure`, body, { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(refused.status, 400);
    assert.match(refused.text, /v<digits>\./, 'says which form is reserved');
  });

  it('resumes a single-topic subscription from a custom id; a multi-shard one from a custom id gets a gap', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const [x, y] = [1, 2].map((shard) => topicOn(shard, 'custom')) as [string, string];
    const body = new URLSearchParams([['topic', x], ['data', 'named'], ['id', 'urn:example:named']]).toString();
    assert.equal((await post(`${a.url}/.well-known/mercure`, body, { 'content-type': 'application/x-www-form-urlencoded' })).status, 200);
    await mercurePublish(a.url, [x], 'after named');
    const single = await openStream(mercureUrl(b.url, [x]), { 'Last-Event-ID': 'urn:example:named' });
    try {
      await single.waitFor((events) => dataOf(events).length >= 1);
      assert.equal(single.headers['mercure-last-event-id'], 'urn:example:named', 'no gap');
      assert.deepEqual(dataOf(single.events), ['after named']);
    } finally {
      single.close();
    }
    const multi = await openStream(mercureUrl(b.url, [x, y]), { 'Last-Event-ID': 'urn:example:named' });
    try {
      await multi.waitFor((events) => dataOf(events).length >= 1);
      assert.equal(multi.headers['mercure-last-event-id'], 'earliest', 'a gap: the id names no position on the other shard');
      // The id is trusted on x's shard, whose copy the subscription takes; y's from its start.
      assert.deepEqual(dataOf(multi.events), ['after named']);
    } finally {
      multi.close();
    }
  });

  it('refuses acknowledged consumers with a clear error', async () => {
    const [a] = hubs.nodes as [(typeof hubs.nodes)[0]];
    const res = await fetch(`${subscribeUrl(a.url, 'work')}?consumer=worker`);
    assert.equal(res.status, 501);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'HUB_ERR_CONSUMER_UNSUPPORTED');
  });

  it('a master killed: its topics get 503 within seconds, others keep working unnoticed; restarted from its AOF, nothing acknowledged is lost', async () => {
    const [a, b] = hubs.nodes as [(typeof hubs.nodes)[0], (typeof hubs.nodes)[0]];
    const keys = await keysPerMaster(redis, hubs.prefix);
    const shardOfMaster = keys.map((list) => Number(/^\{[^}]*?(\d+)\}/.exec(list.find((k) => k.endsWith('}seq')) ?? '')?.[1] ?? -1));
    const victim = shardOfMaster.findIndex((s) => s >= 0);
    assert.ok(victim >= 0, `a master holds a shard: ${JSON.stringify(shardOfMaster)}`);
    const lostShard = shardOfMaster[victim]!;
    const down = topicOn(lostShard, 'down');
    const up = topicOn((lostShard + 1) % SHARDS, 'up');
    const upStream = await openStream(subscribeUrl(b.url, up));
    const downStream = await openStream(subscribeUrl(b.url, down));
    try {
      await upStream.waitForCount(1);
      await downStream.waitForCount(1);
      const acknowledged: string[] = [];
      for (let i = 0; i < 5; i++) {
        assert.equal((await tryPublish(a.url, down, `down ${i}`)).status, 200);
        acknowledged.push(`down ${i}`);
      }
      await downStream.waitFor((events) => dataOf(events).length >= 5);
      await redis.masters[victim]!.kill();
      const started = Date.now();
      const refused = await tryPublish(a.url, down, 'refused');
      assert.equal(refused.status, 503);
      assert.equal(refused.code, 'HUB_ERR_STORE_UNAVAILABLE');
      assert.ok(Date.now() - started < 5000, `refused within seconds (${Date.now() - started} ms)`);
      // The fault rule: one master down takes no node out of its load balancer (review item 4).
      assert.equal((await fetch(`${a.url}/readyz`)).status, 200, 'the node stays ready for the other shards');
      for (let i = 0; i < 5; i++) {
        const res = await post(`${a.url}/messages/${encodeURIComponent(up)}`, JSON.stringify({ message: `up ${i}` }), { 'content-type': 'application/json' });
        assert.equal(res.status, 200, `another shard still takes publishes (${res.text})`);
      }
      await upStream.waitFor((events) => dataOf(events).length >= 5);
      assert.deepEqual(dataOf(upStream.events), [0, 1, 2, 3, 4].map((i) => `up ${i}`), 'its subscriber noticed nothing');

      await redis.masters[victim]!.restart();
      for (const node of [a, b]) await eventually(async () => (await tryPublish(node.url, down, 'probe')).status === 200, 30_000, 'the shard to take publishes again');
      for (let i = 5; i < 8; i++) {
        assert.equal((await tryPublish(b.url, down, `down ${i}`)).status, 200);
        acknowledged.push(`down ${i}`);
      }
      await downStream.waitFor((events) => dataOf(events).includes('down 7'), 20_000);
      assert.deepEqual(dataOf(downStream.events).filter((d) => d !== 'probe' && d !== 'refused'), acknowledged, 'the open stream got every acknowledged message once');
      const resumed = await openStream(subscribeUrl(a.url, down), { 'Last-Event-ID': downStream.events.find((e) => e.data === 'down 1')!.id! });
      try {
        await resumed.waitFor((events) => dataOf(events).includes('down 7'), 20_000);
        assert.equal(resumed.headers['replay-gap'], undefined);
        assert.deepEqual(dataOf(resumed.events).filter((d) => d !== 'probe' && d !== 'refused'), acknowledged.slice(2));
      } finally {
        resumed.close();
      }
    } finally {
      upStream.close();
      downStream.close();
    }
  });
});
