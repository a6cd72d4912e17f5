/**
 * The interest scenario's own machinery (bench/interest/): the SPUBLISH variant of the store's
 * append script on a real Redis, hole detection on the copies it publishes, and the scenario on
 * a real 3-master Redis Cluster, whose figures must say what each transport is known to do.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { after, describe, test } from 'node:test';
import { decodeEntry, encodeDraft, type StreamEntry } from '../../src/store/redis/codec.js';
import { redisKeys, RedisScripts, SCRIPT_DEFINITIONS } from '../../src/store/redis/scripts.js';
import { decodeShardedCopy, type ShardedCopy } from '../../bench/interest/sharded-copy.js';
import { deliveredExactly, perMessage, runInterestScenario, usPerCall, type InterestRow } from '../../bench/interest/scenario.js';
import { spublishScriptDefinitions, topicChannel } from '../../bench/interest/spublish-append.js';
import { TopicContinuity } from '../../bench/interest/topic-continuity.js';
import { countInstructions } from '../../bench/interest/instructions.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

describe('topic continuity of at-most-once copies', () => {
  test('a copy follows on, repeats, or shows a hole; a topic not started takes nothing', () => {
    const c = new TopicContinuity();
    assert.equal(c.accept('a', 5, 0), 'duplicate', 'not followed');
    c.start('a', 10);
    assert.equal(c.accept('a', 12, 7), 'next', 'its previous message is before the start');
    assert.equal(c.accept('a', 12, 7), 'duplicate');
    assert.equal(c.accept('a', 15, 12), 'next');
    // 17 was lost: 20 says its previous message is 17, above the 15 the node has.
    assert.equal(c.accept('a', 20, 17), 'hole');
    assert.equal(c.lastOf('a'), 20, 'moved on: the caller fills 15 < seq < 20 from history');
    assert.equal(c.accept('a', 21, 20), 'next');
    c.stop('a');
    assert.equal(c.lastOf('a'), undefined);
    assert.equal(c.accept('a', 22, 21), 'duplicate');
  });
});

describe('the append script with SPUBLISH', () => {
  let redis: TestRedis | undefined;
  const clients: Redis[] = [];
  after(async () => {
    for (const c of clients) c.disconnect();
    await redis?.stop();
  });

  test('stores what the store\'s script stores, and publishes each message to its topic\'s channel with the previous seq of the topic', async () => {
    redis = await startRedis({ persistence: 'none' });
    const open = (scripts: Record<string, { lua: string }>): Redis => {
      const client = new Redis(redis!.url, { protocol: 2, scripts });
      clients.push(client);
      return client;
    };
    const plain = open(SCRIPT_DEFINITIONS);
    const publishing = open(spublishScriptDefinitions());
    const subscriber = open({});
    const keysA = redisKeys('plain:', true, 0);
    const keysB = redisKeys('spub:', true, 0);
    const copies: ShardedCopy[] = [];
    const channels: string[] = [];
    subscriber.on('smessage', (channel: string, payload: string) => {
      channels.push(channel);
      copies.push(decodeShardedCopy(payload));
    });
    await subscriber.ssubscribe(topicChannel(keysB, 'x'));
    const append = (client: Redis, keys: typeof keysA, topic: string, data: string, draft: { id?: string; type?: string } = {}) =>
      new RedisScripts(keys).append(client, {
        base: 1_000_000,
        maxMessagesPerTopic: 2,
        pruneBudget: 10,
        topics: [topic],
        values: encodeDraft({ topics: [topic], data, ...draft }, [topic], 1234),
      });
    const sequence: [string, string, { id?: string; type?: string }][] = [
      ['x', 'one', {}],
      ['y', 'other topic', {}],
      ['x', 'line 1\nline 2 "quoted" \\ é', { id: 'custom-1', type: 'greeting' }],
      ['x', 'three', {}],
      ['x', 'four: the topic retains 2, so this one prunes', {}],
    ];
    for (const [topic, data, draft] of sequence) {
      await append(plain, keysA, topic, data, draft);
      await append(publishing, keysB, topic, data, draft);
    }
    const entries = async (client: Redis, keys: typeof keysA): Promise<StreamEntry[]> => (await client.xrange(keys.log, '-', '+')) as StreamEntry[];
    const stored = await entries(publishing, keysB);
    assert.deepEqual(stored.map(decodeEntry), (await entries(plain, keysA)).map(decodeEntry), 'the same stream as the store\'s own script');
    assert.deepEqual(await publishing.zrange(`${keysB.topicPrefix}x`, '0', '-1'), await plain.zrange(`${keysA.topicPrefix}x`, '0', '-1'), 'the same retention');

    for (let i = 0; i < 50 && copies.length < 4; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(copies.length, 4, 'the four messages of x, not the one of y');
    assert.deepEqual(new Set(channels), new Set([topicChannel(keysB, 'x')]));
    const ofX = stored.map(decodeEntry).filter((m) => m.topics[0] === 'x');
    assert.deepEqual(copies.map((c) => c.message), ofX, 'each copy decodes to the stored message');
    assert.deepEqual(
      copies.map((c) => c.prev),
      [0, ...ofX.slice(0, -1).map((m) => m.seq)],
      'prev: the seq of the topic\'s previous message (none for the first)',
    );
    // A node that lost the second copy sees the hole at the third.
    const continuity = new TopicContinuity();
    continuity.start('x', 0);
    const verdicts = [copies[0]!, copies[2]!, copies[3]!].map((c) => continuity.accept('x', c.message.seq, c.prev));
    assert.deepEqual(verdicts, ['next', 'hole', 'next']);
  });
});

describe('interest scenario on a 3-master Redis Cluster', () => {
  test('B receives exactly what each transport carries; the figures show streams carry the shard, channels the topics', async () => {
    const run = await runInterestScenario({
      quick: true,
      sizes: { topics: 60, warmupMs: 200, windowMs: 600, channelChurnCycles: 2, shardChurnCycles: 3 },
      rows: [
        { interest: 'none', transport: 'streams', script: 'append' },
        { interest: '10 %', transport: 'streams', script: 'append' },
        { interest: '10 %', transport: 'channels', script: 'append + SPUBLISH' },
        { interest: 'pattern *', transport: 'streams', script: 'append + SPUBLISH' },
      ],
      server: { cpu: undefined, nice: undefined },
      instructions: false,
      log: () => {},
    });
    assert.equal(run.error, null);
    const [none, streams, channels, pattern] = run.rows as [InterestRow, InterestRow, InterestRow, InterestRow];
    for (const row of run.rows) {
      assert.equal(row.error, null, row.error ?? '');
      assert.ok(row.published > 50, `${row.interest} ${row.transport}: ${row.published} appends in the window`);
      assert.ok(row.check && deliveredExactly(row.check), JSON.stringify(row.check));
    }
    assert.deepEqual(
      run.rows.map((r) => [r.interestTopics, r.followed]),
      [
        [0, 0],
        [6, 3],
        [6, 6],
        [60, 3],
      ],
      'topics wanted; shards followed (streams) or channels subscribed',
    );
    // Nothing wanted: nothing read, nothing sent to B.
    assert.equal(none.bytesToReader, 0);
    assert.equal(none.check!.reader.received, 0);
    // Streams: every message of the followed shards reaches B, a tenth of them wanted.
    assert.equal(streams.check!.expectedReceived, streams.check!.published);
    assert.equal(streams.check!.reader.ofInterest, streams.check!.expectedOfInterest);
    assert.ok(streams.check!.expectedOfInterest < streams.check!.published / 5);
    // Channels: only the wanted tenth; an order of magnitude fewer bytes than streams.
    assert.equal(channels.check!.reader.received, channels.check!.expectedOfInterest);
    assert.ok(perMessage(channels, channels.bytesToReader) * 3 < perMessage(streams, streams.bytesToReader), `${channels.bytesToReader} against ${streams.bytesToReader} bytes`);
    assert.ok(streams.commands.some((c) => c.command === 'xread'), 'streams read with XREAD');
    assert.ok(!channels.commands.some((c) => c.command === 'xread'), 'channels never read');
    assert.ok(usPerCall(channels.commands, 'spublish') > 0, 'channels publish in the append script');
    assert.ok(!streams.commands.some((c) => c.command === 'spublish'));
    // A pattern node gets every message from the streams while appends also publish.
    assert.equal(pattern.check!.reader.received, pattern.check!.published);
    for (const row of run.rows) assert.ok(usPerCall(row.commands, 'evalsha') > 0, 'the append script ran in the window');

    const [churnChannels, churnShards] = run.churn;
    assert.equal(churnChannels?.error, null);
    assert.equal(churnChannels!.operations, 60 * 2);
    assert.equal(churnChannels!.commands.find((c) => c.command === 'ssubscribe')?.calls, 120, 'one SSUBSCRIBE per topic and round');
    assert.equal(churnChannels!.commands.find((c) => c.command === 'sunsubscribe')?.calls, 120);
    assert.equal(churnShards?.error, null);
    assert.equal(churnShards!.operations, 3 * 3);
    assert.equal(churnShards!.commands.find((c) => c.command === 'evalsha')?.calls, 9, 'one JOIN per shard and round');
  });
});

describe('Redis instructions per message, under callgrind', () => {
  test('every phase counted; publishing and reading cost more than appending; a read per message when each append waits', async (t) => {
    const counted = await countInstructions(40, 10);
    if (counted.unavailable) {
      t.skip(counted.unavailable);
      return;
    }
    const per = new Map(counted.phases.map((p) => [p.phase, p.instructions / p.messages]));
    assert.equal(counted.phases.length, 7);
    const append = per.get('append')!;
    assert.ok(append > 1000, `${append} instructions per append`);
    assert.ok(per.get('append + SPUBLISH, no subscriber')! > append);
    assert.ok(per.get('append, a node following the stream, one read per message')! > append);
    const reads = new Map(counted.phases.map((p) => [p.phase, p.reads]));
    assert.equal(reads.get('append'), 0);
    // Each append waits for its dispatch: one read carries it (and the next read blocks).
    assert.ok(reads.get('append, a node following the stream, one read per message')! >= 40);
    assert.ok(reads.get('append, a node following the stream, 100 appends in flight')! < 40);
  });
});
