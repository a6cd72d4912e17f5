import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { ensureRedisServer, startRedis, type TestRedis } from './redis-server.js';

/** A real Redis Cluster of `redis-server` processes on loopback ports, for tests. */
export interface TestRedisCluster {
  /** One server per master, in the order of their ports. */
  readonly masters: readonly TestRedis[];
  /** `redis-cluster://127.0.0.1:<port>,...`: every master as a seed node. */
  readonly url: string;
  /** Kills every server and removes their data directories. Idempotent. */
  stop(): Promise<void>;
}

export interface TestRedisClusterOptions {
  /** Masters (default 3; 1 and 2 are joined by hand, see joinByHand); no replicas. */
  readonly masters?: number;
  /** How long a master may be silent before the others mark it failing (default 2000 ms). */
  readonly nodeTimeoutMs?: number;
  /**
   * `aof` (default): append-only file with `appendfsync always`, so a killed master loses
   * nothing it acknowledged. `none`: nothing on disk but the cluster config (the benchmark's
   * choice, as for its single Redis: an fsync per write would be what it measures).
   */
  readonly persistence?: 'none' | 'aof';
}

/** The cluster bus listens on port + 10000: both must be free, and below 65536. */
const BUS_OFFSET = 10_000;

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port that was free a moment ago, with its bus port, outside the ephemeral range. */
async function freeClusterPort(taken: ReadonlySet<number>): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
    if ((await canBind(port)) && (await canBind(port + BUS_OFFSET))) return port;
  }
}

/** Runs `redis-cli` with `args`; resolves with its output, rejects when it exits non-zero. */
function redisCli(args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`redis-cli ${args.join(' ')} exited with ${code}: ${output}`));
    });
  });
}

/** Resolves once every master reports `cluster_state:ok` with all 16384 slots served. */
async function waitForClusterOk(ports: readonly number[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    for (;;) {
      const info = await redisCli(['-h', '127.0.0.1', '-p', String(port), 'cluster', 'info']).catch(() => '');
      if (/cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info)) break;
      if (Date.now() > deadline) throw new Error(`the Redis Cluster on ${ports.join(',')} did not reach cluster_state:ok: ${info}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Slots of a cluster: 0 to SLOTS − 1. */
const SLOTS = 16_384;

/**
 * What `redis-cli --cluster create` does, for the 1 or 2 masters it refuses (it wants at least
 * 3): each master takes an even range of the slots, and every other one meets the first.
 */
async function joinByHand(ports: readonly number[]): Promise<void> {
  for (const [i, port] of ports.entries()) {
    const first = Math.floor((i * SLOTS) / ports.length);
    const last = Math.floor(((i + 1) * SLOTS) / ports.length) - 1;
    await redisCli(['-h', '127.0.0.1', '-p', String(port), 'cluster', 'addslotsrange', String(first), String(last)]);
    if (i > 0) await redisCli(['-h', '127.0.0.1', '-p', String(port), 'cluster', 'meet', '127.0.0.1', String(ports[0])]);
  }
}

/**
 * Starts a Redis Cluster of `masters` masters and no replicas: one `redis-server
 * --cluster-enabled yes` per master (by default with an append-only file, `appendfsync always`;
 * each in its own temporary directory with its cluster config file), joined with `redis-cli --cluster create`,
 * and resolves once every master says `cluster_state:ok`.
 */
export async function startRedisCluster(options: TestRedisClusterOptions = {}): Promise<TestRedisCluster> {
  ensureRedisServer();
  const count = options.masters ?? 3;
  const masters: TestRedis[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(masters.map((m) => m.stop()));
  };
  try {
    const taken = new Set<number>();
    for (let i = 0; i < count; i++) {
      const port = await freeClusterPort(taken);
      taken.add(port).add(port + BUS_OFFSET);
      masters.push(
        await startRedis({
          port,
          persistence: options.persistence ?? 'aof',
          args: [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 2000),
            // Without full coverage the masters left keep serving their slots when one dies, as a
            // sharded deployment (--redis-shards) needs; the single-stream store is down either way.
            '--cluster-require-full-coverage', 'no',
            // A lone master never learns its address from a peer: CLUSTER SLOTS would name it "".
            ...(count < 3 ? ['--cluster-announce-ip', '127.0.0.1'] : []),
          ],
        }),
      );
    }
    const addresses = masters.map((m) => `127.0.0.1:${m.port}`);
    if (count >= 3) await redisCli(['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
    else await joinByHand(masters.map((m) => m.port));
    await waitForClusterOk(masters.map((m) => m.port));
    return { masters, url: `redis-cluster://${addresses.join(',')}`, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
