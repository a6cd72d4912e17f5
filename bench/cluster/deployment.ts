/**
 * The deployment the cluster scenario measures: a Redis Cluster of 1–3 masters (the tests'
 * helper, without persistence) and two sse-relay hubs on it, every process pinned to the one
 * server core, as the bench's other Redis peers are.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startRedisCluster } from '../../test/helpers/redis-cluster.js';
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
  const store = ['--store', cluster.url, '--redis-key-prefix', `bench-${randomBytes(4).toString('hex')}:`];
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
