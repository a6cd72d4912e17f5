/**
 * What a publish costs on the sharded Redis store (`--redis-shards 3` on a 3-master cluster),
 * without HTTP: messages on one topic, and on topics of two and of three shards (which take
 * every shard's lock, docs/scaling.md "Messages on several topics"). The store follows every
 * shard (a `*` subscriber), so each append resolves once its copies were dispatched.
 *
 *   node dist/bench/sharded-append.js [--appends 3000] [--concurrency 1,8,50]
 *
 * Each step runs a warm-up of the same size first. Printed per step: appends/s, mean and p99
 * latency, node CPU µs per append, and Redis' time in commands and commands per append (summed
 * over the masters, `INFO commandstats`; a script's inner calls count too). Compare runs of the same moment: the machine is shared, CPU per append is the
 * steadier figure.
 */
import { Redis } from 'ioredis';
import { ShardedRedisStore } from '../src/store/redis/sharded-redis-store.js';
import { parseCommandStats, sumCommandStats } from './cluster/command-stats.js';
import { startRedisCluster } from '../test/helpers/redis-cluster.js';

interface Args {
  appends: number;
  concurrency: number[];
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { appends: 3000, concurrency: [1, 8, 50] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i] ?? '';
    if (flag === '--appends' && Number.isSafeInteger(Number(value)) && Number(value) > 0) args.appends = Number(value);
    else if (flag === '--concurrency' && /^[0-9]+(,[0-9]+)*$/.test(value)) args.concurrency = value.split(',').map(Number);
    else throw new Error(`unknown argument ${String(flag)} (usage: [--appends N] [--concurrency 1,8,50])`);
  }
  return args;
}

/** Time Redis spent in commands, µs, and the calls, summed over the masters. */
async function redisCommands(admins: readonly Redis[]): Promise<{ usec: number; calls: number }> {
  const stats = sumCommandStats(await Promise.all(admins.map(async (admin) => parseCommandStats(await admin.info('commandstats')))));
  let usec = 0;
  let calls = 0;
  for (const [command, cost] of stats) {
    if (command === 'info') continue;
    usec += cost.usec;
    calls += cost.calls;
  }
  return { usec, calls };
}

async function step(store: ShardedRedisStore, admins: readonly Redis[], topics: readonly string[], appends: number, concurrency: number): Promise<string> {
  const data = 'x'.repeat(100);
  const latencies: number[] = [];
  const run = async (record: boolean): Promise<void> => {
    let next = 0;
    const appender = async (): Promise<void> => {
      while (next++ < appends) {
        const started = performance.now();
        await store.append({ topics, data });
        if (record) latencies.push(performance.now() - started);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, appender));
  };
  await run(false);
  const redisBefore = await redisCommands(admins);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await run(true);
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (performance.now() - started) / 1000;
  const redisAfter = await redisCommands(admins);
  const redisUsec = redisAfter.usec - redisBefore.usec;
  const redisCalls = redisAfter.calls - redisBefore.calls;
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((sum, ms) => sum + ms, 0) / latencies.length;
  const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
  return `${String(concurrency).padStart(2)} in flight: ${String(Math.round(appends / seconds)).padStart(6)} appends/s, latency mean ${mean.toFixed(2)} ms p99 ${p99.toFixed(2)} ms, node ${((cpu.user + cpu.system) / appends).toFixed(0)} µs CPU/append, Redis ${(redisUsec / appends).toFixed(1)} µs in commands and ${(redisCalls / appends).toFixed(1)} commands/append`;
}

const args = parseArgs(process.argv.slice(2));
const cluster = await startRedisCluster({ masters: 3, persistence: 'none' });
const admins = cluster.masters.map((master) => new Redis(master.url));
const store = new ShardedRedisStore({ url: cluster.url, keyPrefix: 'bench-sharded:', shards: 3, maxMessagesPerTopic: 1000, maxAgeMs: 0 });
try {
  await store.open();
  await store.follow(undefined);
  const topicOn = (shard: number): string => {
    for (let i = 0; ; i++) if (store.shardOf(`bench-${i}`) === shard) return `bench-${i}`;
  };
  const [x, y, z] = [topicOn(0), topicOn(1), topicOn(2)] as [string, string, string];
  console.log(`sharded-append: 3 masters, 3 shards, ${args.appends} appends of 100 bytes per step`);
  for (const [name, topics] of [['one topic', [y]], ['two shards', [x, y]], ['three shards', [x, y, z]]] as const) {
    console.log(`  ${name}:`);
    for (const concurrency of args.concurrency) console.log(`    ${await step(store, admins, topics, args.appends, concurrency)}`);
  }
} finally {
  await store.close();
  for (const admin of admins) admin.disconnect();
  await cluster.stop();
}
