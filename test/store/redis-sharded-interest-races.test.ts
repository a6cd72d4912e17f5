import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { Message } from '../../src/hub/message.js';
import { ShardedRedisStore } from '../../src/store/redis/sharded-redis-store.js';
import { redisKeys } from '../../src/store/redis/scripts.js';
import { draft, eventually } from '../contract/store-contract.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

/**
 * Follow and unfollow of a shard (node-local interest) against the readers hash, which
 * retention's sweep waits for: the interleavings are forced with real Redis behaviour (a
 * connection killed, CLIENT PAUSE, MONITOR as the witness of what ran in which order).
 */

interface Connection {
  readonly id: string;
  readonly addr: string;
  readonly role: string;
  readonly flags: string;
  readonly cmd: string;
}

let redis: TestRedis;
let admin: Redis;
let stores = 0;
before(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
after(async () => {
  admin?.disconnect();
  await redis?.stop();
});

async function openStore(t: TestContext, extra: { maxAgeMs?: number } = {}): Promise<{ store: ShardedRedisStore; prefix: string }> {
  const prefix = `races-${++stores}:`;
  // A command timeout longer than any pause below: a command held by CLIENT PAUSE must wait,
  // not fail and take its connection down.
  const store = new ShardedRedisStore({ maxMessagesPerTopic: 100, maxAgeMs: extra.maxAgeMs ?? 0, url: redis.url, keyPrefix: prefix, shards: 2, pruneIntervalMs: 20, commandTimeoutMs: 30_000 });
  t.after(() => store.close());
  await store.open();
  return { store, prefix };
}

function topicOn(store: ShardedRedisStore, shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (store.shardOf(`${prefix}${i}`) === shard) return `${prefix}${i}`;
}

/** The connections of one shard's node (its `nodeId`), as CLIENT LIST shows them. */
async function connectionsOf(nodeId: string): Promise<Connection[]> {
  const list = (await admin.client('LIST')) as string;
  const out: Connection[] = [];
  for (const line of list.split('\n')) {
    const field = (name: string): string => new RegExp(`(?:^| )${name}=(\\S*)`).exec(line)?.[1] ?? '';
    const name = field('name');
    if (!name.startsWith(`sse-relay:${nodeId}:`)) continue;
    out.push({ id: field('id'), addr: field('addr'), role: name.slice(name.lastIndexOf(':') + 1), flags: field('flags'), cmd: field('cmd') });
  }
  return out;
}

async function isReader(prefix: string, shard: number, nodeId: string): Promise<boolean> {
  return (await admin.hexists(redisKeys(prefix, false, shard).readers, nodeId)) === 1;
}

describe('sharded Redis store: the readers hash follows what the node reads (issue 14 review)', () => {
  it('a shard left while its command connection is down leaves the readers hash once it is back', async (t) => {
    const { store, prefix } = await openStore(t);
    const x = topicOn(store, 0, 'lost-leave-');
    const shard = store.shards[0]!;
    await store.follow([x]);
    assert.equal(await isReader(prefix, 0, shard.nodeId), true, 'registered while it reads');

    const cmd = (await connectionsOf(shard.nodeId)).find((c) => c.role === 'cmd')!;
    await admin.client('KILL', 'ID', cmd.id);
    await eventually(() => !shard.isReady(), 'the shard to notice its lost connection');
    store.unfollow([x]);

    // Registered while not reading, the node would hold back every node's sweep of dead
    // bodies until its liveness key expires (30 s).
    await eventually(async () => !(await isReader(prefix, 0, shard.nodeId)), 'the node to leave the readers hash once reconnected');
  });

  it('a shard left during a rejoin stays left: no reading, no heartbeat from a stale position', async (t) => {
    const { store, prefix } = await openStore(t, { maxAgeMs: 300 });
    const x = topicOn(store, 0, 'rejoin-');
    const shard = store.shards[0]!;
    const seen: Message[] = [];
    store.setAppendListener((m) => seen.push(m));
    await store.follow([x]);
    await store.append(draft(x, 'followed'));
    assert.deepEqual(seen.map((m) => m.data), ['followed']);

    // Writes (the rejoin's registration among them) wait while Redis is paused; reads do not.
    await admin.client('PAUSE', 10_000, 'WRITE');
    let paused = true;
    t.after(async () => {
      if (paused) await admin.client('UNPAUSE');
    });
    const killed = (await connectionsOf(shard.nodeId)).find((c) => c.role === 'reader')!;
    await admin.client('KILL', 'ID', killed.id);
    // The new reader connection has done its handshake (ioredis' ready check is INFO): the
    // store registers again when it sees that reply, which two more round trips guarantee.
    await eventually(async () => (await connectionsOf(shard.nodeId)).some((c) => c.role === 'reader' && c.id !== killed.id && c.cmd !== 'NULL' && c.cmd !== 'client|setname'), 'the reader connection back');
    await admin.ping();
    await admin.ping();
    await eventually(async () => (await connectionsOf(shard.nodeId)).some((c) => c.flags.includes('b') && /^eval/.test(c.cmd)), 'the rejoin to wait for the pause');
    store.unfollow([x]);
    await admin.client('UNPAUSE');
    paused = false;

    await eventually(() => shard.isReady(), 'both connections of the shard ready');
    await store.append(draft(x, 'while nobody follows'));
    // Age retention runs on every prune tick of this node, after its heartbeat: once it has
    // pruned what was published after the pause, a heartbeat would have run since.
    await eventually(async () => (await store.read({ afterSeq: 0, topics: [x], limit: 10 })).length === 0, 'age retention to prune the topic');
    assert.equal(await isReader(prefix, 0, shard.nodeId), false, 'not registered: it reads nothing, so sweeps must not wait for it');
    assert.deepEqual(seen.map((m) => m.data), ['followed'], 'nothing dispatched while nobody follows the shard');

    const started = await store.follow([x]);
    const next = await store.append(draft(x, 'followed again'));
    assert.ok(started.get(0)! >= next.seq - 1, `a follow starts at the current position (${started.get(0)} before ${next.seq})`);
    assert.deepEqual(seen.map((m) => m.data), ['followed', 'followed again']);
    assert.equal(await isReader(prefix, 0, shard.nodeId), true);
  });

  it('a re-follow right after an unfollow neither waits behind the XREAD in flight nor issues another', async (t) => {
    const { store, prefix } = await openStore(t);
    const x = topicOn(store, 0, 'refollow-');
    const shard = store.shards[0]!;
    const seen: string[] = [];
    store.setAppendListener((m) => seen.push(m.data));
    await store.follow([x]);
    const connections = await connectionsOf(shard.nodeId);
    const reader = connections.find((c) => c.role === 'reader')!.addr;
    const commands = connections.find((c) => c.role === 'cmd')!.addr;

    const monitor = await admin.monitor();
    t.after(() => monitor.disconnect());
    const log: { source: string; args: string[] }[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => log.push({ source, args }));
    // The read loop sends its next XREAD as it dispatches this, so it is fresh, far from its
    // block timeout, when the shard is left and followed again.
    await store.append(draft(x, 'warm'));
    store.unfollow([x]);
    await store.follow([x]);
    const live = await store.append(draft(x, 'live'));
    assert.deepEqual(seen, ['warm', 'live']);
    await eventually(() => log.some((e) => e.source === commands && /^eval/.test(e.args[0] ?? '') && e.args.includes('live')), 'MONITOR to show the append');

    const leave = log.findIndex((e) => e.source === commands && e.args[0] === 'hdel' && e.args[1] === redisKeys(prefix, false, 0).readers);
    const stored = log.findIndex((e) => e.source === commands && e.args.includes('live'));
    assert.ok(leave >= 0 && leave < stored, 'the leave, then the append');
    const onReader = log.slice(leave, stored).filter((e) => e.source === reader).map((e) => e.args.slice(0, 2).join(' '));
    assert.deepEqual(onReader, [], 'the re-follow registered on the command connection, and the XREAD in flight read the message');
    assert.ok(live.seq > 0);
  });
});
