/**
 * The deployment the cluster scenario measures: a Redis Cluster of 1–3 masters (the tests'
 * helper, without persistence) and two sse-relay hubs on it, every process pinned to the one
 * server core, as the bench's other Redis peers are.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisKeys } from '../../src/store/redis/scripts.js';
import { startRedisCluster } from '../../test/helpers/redis-cluster.js';
import { parseCommandStats, sumCommandStats, type CommandCost } from './command-stats.js';
import { freePort } from '../peers/free-port.js';
import { RELAY_CLI_PATH, relayLimitFlags, startProcess, type ServerProcess } from '../peers/peers.js';

/** How the hubs lay their data out on the cluster. */
export interface ClusterLayout {
  /** `single stream`: today's store, one stream and counter under one hash tag (one master). */
  readonly name: 'single stream' | 'sharded';
  /** `--redis-shards` (sharded only): one shard per master. */
  readonly shards?: number | undefined;
}

/** Where and how the processes run. */
export interface Placement {
  /** CPU list for `taskset -c`; undefined: not pinned. */
  readonly cpu: string | undefined;
  readonly nice: number | undefined;
}

/** One master of the running cluster. */
export interface BenchMaster {
  readonly port: number;
  readonly pid: number;
}

export interface BenchRedisCluster {
  readonly masters: readonly BenchMaster[];
  /** `redis-cluster://…` with every master as a seed. */
  readonly url: string;
  /** Keys on each master, in the order of `masters`. */
  keysPerMaster(): Promise<number[]>;
  /** Index in `masters` of the master that serves each of `keys` now. */
  mastersOf(keys: readonly string[]): Promise<number[]>;
  /**
   * Moves the slot of each key to the master of that index (slots that hold no key only: the
   * move does not migrate keys), and resolves once every master agrees.
   */
  placeKeys(placements: readonly { key: string; master: number }[]): Promise<void>;
  /** `INFO commandstats` of every master, summed (counters since start). */
  commandStats(): Promise<Map<string, CommandCost>>;
  /** Removes every key on every master (a fresh data set for the next layout). */
  flush(): Promise<void>;
  /** Stops every master and removes its data directory. */
  stop(): Promise<void>;
}

/** Runs `command` on every master, each on its own short-lived connection. */
async function onEachMaster<T>(ports: readonly number[], command: (client: Redis) => Promise<T>): Promise<T[]> {
  return Promise.all(
    ports.map(async (port) => {
      const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
      try {
        await client.connect();
        return await command(client);
      } finally {
        client.disconnect();
      }
    }),
  );
}

/** The port of the master that serves each of `keys`, in the view of the node `client` is on. */
async function servingPorts(client: Redis, keys: readonly string[]): Promise<number[]> {
  const ranges = (await client.cluster('SLOTS')) as unknown as [number, number, [string, number, ...unknown[]]][];
  const slots = await Promise.all(keys.map((key) => client.cluster('KEYSLOT', key) as Promise<number>));
  return slots.map((slot) => Number(ranges.find(([first, last]) => slot >= first && slot <= last)?.[2][1] ?? -1));
}

/** See BenchRedisCluster.placeKeys. */
async function placeKeys(ports: readonly number[], placements: readonly { key: string; master: number }[]): Promise<void> {
  const ids = await onEachMaster(ports, (client) => client.cluster('MYID') as Promise<string>);
  const [owners] = await onEachMaster(ports.slice(0, 1), async (client) => {
    const serving = await servingPorts(client, placements.map((p) => p.key));
    const slots = await Promise.all(placements.map((p) => client.cluster('KEYSLOT', p.key) as Promise<number>));
    return serving.map((port, i) => ({ from: ports.indexOf(port), slot: slots[i]! }));
  });
  for (const [i, { master }] of placements.entries()) {
    const { from, slot } = owners![i]!;
    if (from === master) continue;
    // The documented steps of a slot move (CLUSTER SETSLOT), with no keys to MIGRATE.
    await onEachMaster([ports[master]!], (c) => c.cluster('SETSLOT', slot, 'IMPORTING', ids[from]!));
    await onEachMaster([ports[from]!], (c) => c.cluster('SETSLOT', slot, 'MIGRATING', ids[master]!));
    await onEachMaster(ports, (c) => c.cluster('SETSLOT', slot, 'NODE', ids[master]!));
  }
  const deadline = Date.now() + 10_000;
  const wanted = placements.map((p) => ports[p.master]!);
  for (;;) {
    const views = await onEachMaster(ports, (client) => servingPorts(client, placements.map((p) => p.key)));
    if (views.every((view) => view.every((port, i) => port === wanted[i]))) return;
    if (Date.now() > deadline) throw new Error('the masters did not agree on the moved slots within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts a cluster of `masters` masters without persistence (nothing on disk but the cluster
 * config, as the bench's single Redis), and pins each server, all its threads, to the server core.
 */
export async function startBenchCluster(masters: number, placement: Placement): Promise<BenchRedisCluster> {
  const cluster = await startRedisCluster({ masters, persistence: 'none' });
  try {
    const ports = cluster.masters.map((m) => m.port);
    const pids = await onEachMaster(ports, async (client) => Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]));
    for (const pid of pids) {
      if (!(pid > 0)) throw new Error('a Redis master did not report its process_id');
      if (placement.cpu !== undefined) execFileSync('taskset', ['-a', '-p', '-c', placement.cpu, String(pid)], { stdio: 'ignore' });
      if (placement.nice !== undefined) execFileSync('renice', ['-n', String(placement.nice), '-p', String(pid)], { stdio: 'ignore' });
    }
    return {
      masters: ports.map((port, i) => ({ port, pid: pids[i]! })),
      url: cluster.url,
      keysPerMaster: () => onEachMaster(ports, (client) => client.dbsize()),
      mastersOf: async (keys) => (await onEachMaster(ports.slice(0, 1), (client) => servingPorts(client, keys)))[0]!.map((port) => ports.indexOf(port)),
      placeKeys: (placements) => placeKeys(ports, placements),
      commandStats: async () => sumCommandStats(await onEachMaster(ports, async (client) => parseCommandStats(await client.info('commandstats')))),
      flush: async () => {
        await onEachMaster(ports, (client) => client.flushall());
      },
      stop: () => cluster.stop(),
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/**
 * Puts shard `k`'s slot on master `k mod masters`, as an operator places the shards (see
 * docs/scaling.md). Left to the hash, shards often share a master: tags that differ only in their
 * last digit differ in slot by a fixed XOR (CRC16 is linear), so with two masters shards 0 and 1
 * are always on the same one. The cluster is empty here (flushed, no hub yet), so a slot moves
 * without migrating keys.
 */
async function placeShards(cluster: BenchRedisCluster, prefix: string, shards: number): Promise<void> {
  const keys = Array.from({ length: shards }, (_, k) => redisKeys(prefix, true, k).seq);
  await cluster.placeKeys(keys.map((key, k) => ({ key, master: k % cluster.masters.length })));
}

/** One running hub node. */
export interface BenchHub {
  readonly port: number;
  readonly pid: number;
}

export interface HubPair {
  readonly hubs: readonly [BenchHub, BenchHub];
  stop(): Promise<void>;
}

/**
 * Starts two hubs on `cluster` with `layout` (a fresh key prefix), one after the other: they
 * share one core, and each start-up is short. Connection caps are lifted as for every peer.
 */
export async function startHubPair(cluster: BenchRedisCluster, layout: ClusterLayout, placement: Placement): Promise<HubPair> {
  const prefix = `bench-${randomBytes(4).toString('hex')}:`;
  if (layout.shards !== undefined) await placeShards(cluster, prefix, layout.shards);
  const store = ['--store', cluster.url, '--redis-key-prefix', prefix];
  const shards = layout.shards === undefined ? [] : ['--redis-shards', String(layout.shards)];
  const started: (ServerProcess & { port: number })[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((p) => p.stop()));
  };
  try {
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const args = [RELAY_CLI_PATH, 'serve', '--port', String(port), ...store, ...shards, '--log-level', 'silent', ...relayLimitFlags()];
      started.push(await startProcess(placement.cpu, placement.nice, process.execPath, args, port, `cluster hub ${i + 1} on ${port}`));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const [a, b] = started as [ServerProcess & { port: number }, ServerProcess & { port: number }];
  return { hubs: [{ port: a.port, pid: a.pid }, { port: b.port, pid: b.pid }], stop };
}
