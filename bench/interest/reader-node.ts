/**
 * Node B of the interest scenario, in a process of its own so that its CPU and the bytes Redis
 * sends it are its own: it receives what its interest needs, one of the two ways, and decodes
 * every message it gets into the hub's `Message`, counting what it got. No hub, no sockets to
 * subscribers: what is measured is the transport and the decode.
 *
 * - `streams` (way 1, what the store does): the store's own read loop (read-loop.ts: a
 *   blocking XREAD per followed shard, its own connection each) on every shard one of its
 *   topics lives on, or on every shard for a pattern / `*` node.
 * - `channels` (way 2, spublish-append.ts): one connection per master in subscriber mode,
 *   `SSUBSCRIBE` to the channels of its exact topics (one call per shard: a call's channels
 *   must share a slot), each copy checked for a hole against its `prev`.
 *
 * Driven over the IPC channel of `fork` (see {@link ReaderRequest}); run by reader-client.ts.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Message } from '../../src/hub/message.js';
import { READER_TTL_MS, ReadLoop } from '../../src/store/redis/read-loop.js';
import { redisKeys, RedisScripts, SCRIPT_DEFINITIONS, type RedisKeys } from '../../src/store/redis/scripts.js';
import { shardOf } from '../../src/store/redis/shard-of.js';
import { decodeShardedCopy } from './sharded-copy.js';
import { topicChannel } from './spublish-append.js';
import { TopicContinuity } from './topic-continuity.js';

/** How B receives. */
export type Transport = 'streams' | 'channels';

export interface ReaderConfig {
  readonly transport: Transport;
  /** The deployment's key prefix (`--redis-key-prefix`). */
  readonly prefix: string;
  readonly shards: number;
  /** The port of the master serving each shard, by shard. */
  readonly shardPorts: readonly number[];
  /** Its exact topics. */
  readonly topics: readonly string[];
  /** A pattern or `*` node: every message is of interest (streams only: channels cannot). */
  readonly everything: boolean;
}

/** Counters since start; `cpuUs` from getrusage (user + system). */
export interface ReaderSample {
  readonly cpuUs: number;
  /** Messages decoded. */
  readonly received: number;
  /** Of those, messages of its interest (the rest came with a followed shard). */
  readonly ofInterest: number;
  /** Copies whose `prev` showed a lost one, and messages read back from history for them. */
  readonly holes: number;
  readonly repaired: number;
  /** Copies already had. */
  readonly duplicates: number;
}

export type ReaderRequest =
  | { readonly type: 'start'; readonly config: ReaderConfig }
  | { readonly type: 'sample' }
  /** Subscribes to and leaves `topics`' channels `cycles` times (channels). */
  | { readonly type: 'churn-channels'; readonly topics: readonly string[]; readonly cycles: number }
  /** Follows and leaves every shard `cycles` times, with the store's own commands (streams). */
  | { readonly type: 'churn-shards'; readonly cycles: number }
  | { readonly type: 'stop' };

export type ReaderReply =
  | { readonly type: 'ready' }
  | ({ readonly type: 'sample' } & ReaderSample)
  | { readonly type: 'churned'; readonly cpuUs: number; readonly operations: number }
  | { readonly type: 'error'; readonly message: string };

function connection(port: number, role: string): Redis {
  return new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    // As the store's connections (connection.ts): RESP2, the store's scripts.
    protocol: 2,
    scripts: SCRIPT_DEFINITIONS,
    connectionName: `interest-bench:${role}`,
    maxRetriesPerRequest: 1,
  });
}

class ReaderNode {
  private received = 0;
  private ofInterest = 0;
  private holes = 0;
  private repaired = 0;
  private duplicates = 0;
  private readonly interest: ReadonlySet<string>;
  private readonly keys: readonly RedisKeys[];
  private readonly loops: ReadLoop[] = [];
  private readonly connections: Redis[] = [];
  /** Channels: per shard, its subscriber connection and its command connection. */
  private readonly subscribers = new Map<number, { sub: Redis; cmd: Redis }>();
  private readonly channelTopic = new Map<string, string>();
  private readonly continuity = new TopicContinuity();
  /** Churn of shards: one connection per shard, kept from one call to the next (connecting is no part of a follow). */
  private churnClients: Promise<Redis[]> | undefined;
  readonly nodeId = `interest-bench-${process.pid}-${randomBytes(3).toString('hex')}`;

  constructor(private readonly config: ReaderConfig) {
    this.interest = new Set(config.topics);
    this.keys = Array.from({ length: config.shards }, (_, k) => redisKeys(config.prefix, true, k));
  }

  private readonly dispatch = (message: Message): void => {
    this.received++;
    if (this.config.everything) {
      this.ofInterest++;
      return;
    }
    for (const topic of message.topics) {
      if (this.interest.has(topic)) {
        this.ofInterest++;
        return;
      }
    }
  };

  /** The shards its interest needs. */
  private neededShards(): number[] {
    if (this.config.everything) return this.keys.map((_, k) => k);
    return [...new Set(this.config.topics.map((t) => shardOf(t, this.config.shards)))].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    if (this.config.transport === 'channels' && this.config.everything) throw new Error('sharded pub/sub has no pattern subscribe: a pattern node follows streams');
    if (this.config.transport === 'streams') {
      for (const shard of this.neededShards()) await this.follow(shard);
      return;
    }
    const byShard = new Map<number, string[]>();
    for (const topic of this.config.topics) {
      const shard = shardOf(topic, this.config.shards);
      let list = byShard.get(shard);
      if (!list) byShard.set(shard, (list = []));
      list.push(topic);
    }
    for (const [shard, topics] of byShard) await this.subscribe(shard, topics);
  }

  /** The store's read loop on one shard: joins at the shard's current position, then reads on. */
  private async follow(shard: number): Promise<void> {
    const reader = connection(this.config.shardPorts[shard]!, `reader-${shard}`);
    // The store's command connection, which carries the loop's readers-hash writes.
    const commands = connection(this.config.shardPorts[shard]!, `commands-${shard}`);
    this.connections.push(reader, commands);
    await Promise.all([reader.connect(), commands.connect()]);
    const keys = this.keys[shard]!;
    const loop = new ReadLoop({
      reader,
      commands,
      keys,
      scripts: new RedisScripts(keys),
      nodeId: this.nodeId,
      where: () => `127.0.0.1:${this.config.shardPorts[shard]}`,
      log: (level, message) => process.stderr.write(`reader B, shard ${shard}: ${level}: ${message}\n`),
      listener: () => this.dispatch,
      dataSetLost: () => {},
      dispatched: () => {},
    });
    await loop.join();
    loop.start();
    this.loops.push(loop);
  }

  /** The connections of a shard's channels, opened on first use. */
  private async channelConnections(shard: number): Promise<{ sub: Redis; cmd: Redis }> {
    let pair = this.subscribers.get(shard);
    if (pair) return pair;
    const port = this.config.shardPorts[shard]!;
    pair = { sub: connection(port, `sub-${shard}`), cmd: connection(port, `cmd-${shard}`) };
    this.subscribers.set(shard, pair);
    this.connections.push(pair.sub, pair.cmd);
    await Promise.all([pair.sub.connect(), pair.cmd.connect()]);
    const { cmd } = pair;
    pair.sub.on('smessage', (channel: string, payload: string) => this.onCopy(shard, cmd, channel, payload));
    return pair;
  }

  /**
   * Subscribes first, then takes the shard's position: a copy published in between is at or
   * below it (a duplicate of what history has), and every later one is checked against it.
   */
  private async subscribe(shard: number, topics: readonly string[]): Promise<void> {
    const { sub, cmd } = await this.channelConnections(shard);
    const channels = topics.map((topic) => {
      const channel = topicChannel(this.keys[shard]!, topic);
      this.channelTopic.set(channel, topic);
      return channel;
    });
    await sub.ssubscribe(...channels);
    const position = Number((await cmd.get(this.keys[shard]!.seq)) ?? 0);
    for (const topic of topics) this.continuity.start(topic, position);
  }

  private onCopy(shard: number, cmd: Redis, channel: string, payload: string): void {
    const { message, prev } = decodeShardedCopy(payload);
    const topic = this.channelTopic.get(channel) ?? message.topics[0]!;
    const last = this.continuity.lastOf(topic);
    const verdict = this.continuity.accept(topic, message.seq, prev);
    if (verdict === 'duplicate') {
      this.duplicates++;
      return;
    }
    if (verdict === 'hole' && last !== undefined) {
      // What a hub would do before dispatching on: read the hole from the topic's history. The
      // bench only counts it (it is not expected on loopback), so order is not kept here.
      this.holes++;
      void new RedisScripts(this.keys[shard]!).readTopics(cmd, [topic], last, 1000).then(
        (entries) => {
          this.repaired += entries.filter(([id]) => Number(id.slice(0, id.indexOf('-'))) < message.seq).length;
        },
        () => {},
      );
    }
    this.dispatch(message);
  }

  sample(): ReaderSample {
    const cpu = process.cpuUsage();
    return { cpuUs: cpu.user + cpu.system, received: this.received, ofInterest: this.ofInterest, holes: this.holes, repaired: this.repaired, duplicates: this.duplicates };
  }

  /** Subscribe to a topic's channel, take the shard's position, leave the channel: per topic, `cycles` times. */
  async churnChannels(topics: readonly string[], cycles: number): Promise<number> {
    const byShard = new Map<number, string[]>();
    for (const topic of topics) {
      const shard = shardOf(topic, this.config.shards);
      let list = byShard.get(shard);
      if (!list) byShard.set(shard, (list = []));
      list.push(topic);
    }
    const pairs = new Map<number, { sub: Redis; cmd: Redis }>();
    for (const shard of byShard.keys()) pairs.set(shard, await this.channelConnections(shard));
    let operations = 0;
    for (let c = 0; c < cycles; c++) {
      // As subscribers come and go: one command per topic, each not waiting for the others.
      await Promise.all(
        [...byShard].flatMap(([shard, list]) => {
          const { sub, cmd } = pairs.get(shard)!;
          const keys = this.keys[shard]!;
          return list.map(async (topic) => {
            const channel = topicChannel(keys, topic);
            await sub.ssubscribe(channel);
            await cmd.get(keys.seq);
            await sub.sunsubscribe(channel);
          });
        }),
      );
      operations += topics.length;
    }
    return operations;
  }

  /** What following a shard and leaving it send (redis-store.ts followShard / unfollowShard). */
  async churnShards(cycles: number): Promise<number> {
    this.churnClients ??= Promise.all(
      this.keys.map(async (_, shard) => {
        const client = connection(this.config.shardPorts[shard]!, `churn-${shard}`);
        this.connections.push(client);
        await client.connect();
        return client;
      }),
    );
    const clients = await this.churnClients;
    let operations = 0;
    for (let c = 0; c < cycles; c++) {
      await Promise.all(
        this.keys.map(async (keys, shard) => {
          const client = clients[shard]!;
          await new RedisScripts(keys).join(client, this.nodeId, '', READER_TTL_MS);
          await Promise.all([client.hdel(keys.readers, this.nodeId), client.del(keys.readerPrefix + this.nodeId)]);
        }),
      );
      operations += this.keys.length;
    }
    return operations;
  }

  async stop(): Promise<void> {
    await Promise.all(this.loops.map((loop) => loop.stop()));
    for (const c of this.connections) c.disconnect();
  }
}

/** The process's side of the IPC channel. */
function serve(): void {
  let node: ReaderNode | undefined;
  const reply = (message: ReaderReply): void => {
    process.send!(message);
  };
  process.on('message', (request: ReaderRequest) => {
    void (async () => {
      try {
        switch (request.type) {
          case 'start':
            node = new ReaderNode(request.config);
            await node.start();
            reply({ type: 'ready' });
            break;
          case 'sample':
            reply({ type: 'sample', ...node!.sample() });
            break;
          case 'churn-channels':
          case 'churn-shards': {
            const before = node!.sample().cpuUs;
            const operations = request.type === 'churn-channels' ? await node!.churnChannels(request.topics, request.cycles) : await node!.churnShards(request.cycles);
            reply({ type: 'churned', cpuUs: node!.sample().cpuUs - before, operations });
            break;
          }
          case 'stop':
            await node?.stop();
            process.disconnect();
            break;
        }
      } catch (error) {
        reply({ type: 'error', message: (error as Error).stack ?? String(error) });
      }
    })();
  });
}

if (process.send) serve();
