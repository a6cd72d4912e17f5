/**
 * The peers the bench compares, as one adapter table: how each is started (pinned to the
 * server core), where it listens, and its subscribe and publish URLs. All of them speak the same
 * two routes, so one load generator drives them all.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../loadgen/plan.js';
import { freePort } from './free-port.js';
import { accepts } from '../port-wait.js';

/** dist/ of this build: dist/bench/peers → dist. */
const DIST = fileURLToPath(new URL('../../', import.meta.url));
const RELAY_CLI = path.join(DIST, 'src/cli/main.js');

export interface PeerStartContext {
  /** The port of its (first) endpoint; a peer with more endpoints picks free ports for them. */
  readonly port: number;
  /** A fresh directory for this start (data, config, logs, profiles). */
  readonly workDir: string;
  /** CPU list for `taskset -c`; undefined: not pinned. */
  readonly cpu: string | undefined;
  /** Write a V8 CPU profile here (Node peers only). */
  readonly cpuProfileDir?: string | undefined;
  /** Nice level of the server; undefined: inherited. */
  readonly nice?: number | undefined;
}

export interface RunningPeer {
  /** Where it listens: one endpoint per node (one for every peer but a cluster). */
  readonly endpoints: readonly Endpoint[];
  /** The processes whose trees are measured (CPU, memory and run-queue wait summed). */
  readonly pids: readonly number[];
  /** Stops every process it started. */
  stop(): Promise<void>;
}

export interface PeerAdapter {
  readonly name: string;
  readonly description: string;
  /** Paths with `{id}` where the topic goes. */
  readonly subscribePath: string;
  readonly publishPath: string;
  /** Path of a batch publish (JSON array of `{id, message}`); undefined: the peer has none. */
  readonly batchPublishPath?: string;
  /**
   * False: only run when named with `--only` (a variant that would lengthen the default run
   * past its time budget). Default true.
   */
  readonly defaultRun?: boolean;
  /** Why the peer cannot run on this machine; undefined when it can. May install it. */
  unavailable(): string | undefined;
  start(context: PeerStartContext): Promise<RunningPeer>;
}

const MESSAGES_ROUTES = { subscribePath: '/messages/subscribe/{id}', publishPath: '/messages/{id}' } as const;
/** sse-relay's routes: the article's, and its batch publish. */
const RELAY_ROUTES = { ...MESSAGES_ROUTES, batchPublishPath: '/messages' } as const;

export const PEERS: readonly PeerAdapter[] = [
  relayPeer('sse-relay-memory', 'memory'),
  relayPeer('sse-relay-sqlite', 'sqlite'),
  nodePeer('better-sse', 'better-sse 0.16 broadcast channel on node:http', 'bench/peers/better-sse-server.js'),
  nodePeer('express-article', 'plain Express port of the article (Map of id → Set of res)', 'bench/peers/express-article.js'),
  nchanPeer(),
  // Last, so that they do not push the main comparison past the bench's retry window.
  redisPeer('sse-relay-redis-2', 2, true),
  redisPeer('sse-relay-redis', 1, false),
];

export function peerByName(name: string): PeerAdapter | undefined {
  return PEERS.find((p) => p.name === name);
}

function relayPeer(name: string, store: 'memory' | 'sqlite'): PeerAdapter {
  return {
    name,
    description: `sse-relay, --store ${store}`,
    ...RELAY_ROUTES,
    unavailable: () => (existsSync(RELAY_CLI) || existsSync(path.join(DIST, 'bench/peers/sse-relay-server.js')) ? undefined : 'not built'),
    start: ({ port, workDir, cpu, cpuProfileDir, nice }) => {
      const profile = cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : [];
      const common = ['--port', String(port), '--store', store, '--data-dir', path.join(workDir, 'data')];
      const args = existsSync(RELAY_CLI)
        ? [...profile, RELAY_CLI, 'serve', ...common, '--log-level', 'silent', ...relayLimitFlags()]
        : [...profile, path.join(DIST, 'bench/peers/sse-relay-server.js'), ...common];
      return startProcess(cpu, nice, process.execPath, args, port, name).then(single);
    },
  };
}

const REDIS_SERVER = '/usr/bin/redis-server';
let redisProblem: string | undefined | null = null;

/**
 * `hubs` sse-relay processes sharing one private redis-server (a fresh key prefix per start):
 * the cluster set-up of the README. Every process, redis-server included, is pinned to the
 * same single server core every other peer gets, so its figures compare equal hardware: they
 * show what the Redis path costs, not what scaling out to more cores gains.
 */
function redisPeer(name: string, hubs: number, defaultRun: boolean): PeerAdapter {
  const layout =
    hubs === 1
      ? 'one hub process on a private redis-server'
      : `${hubs} hub processes on one private redis-server, subscribers split across the hubs, publishes to all of them`;
  return {
    name,
    description: `sse-relay, --store redis://… (no persistence): ${layout}; all ${hubs + 1} processes on the one server core`,
    ...RELAY_ROUTES,
    defaultRun,
    unavailable: () => {
      if (!existsSync(RELAY_CLI)) return 'not built';
      if (redisProblem === null) redisProblem = ensureRedis();
      return redisProblem;
    },
    start: async ({ port, workDir, cpu, cpuProfileDir, nice }) => {
      const profile = cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : [];
      const redis: ServerProcess[] = [];
      const nodes: ServerProcess[] = [];
      // Hubs first (they may still write to Redis while closing), Redis last.
      const stop = async (): Promise<void> => {
        await Promise.all(nodes.map((n) => n.stop()));
        await Promise.all(redis.map((r) => r.stop()));
      };
      const ports = [port];
      try {
        const redisPort = await freePort();
        // No persistence: nothing on disk, as with the memory peers (`--save ''` disables RDB).
        const redisArgs = ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', workDir, '--save', '', '--appendonly', 'no'];
        redis.push(await startProcess(cpu, nice, REDIS_SERVER, [...redisArgs, '--daemonize', 'no', '--protected-mode', 'no'], redisPort, `${name} redis-server`));
        const store = ['--store', `redis://127.0.0.1:${redisPort}`, '--redis-key-prefix', `bench-${randomBytes(4).toString('hex')}:`];
        while (ports.length < hubs) ports.push(await freePort());
        // One after the other: they share one core, and each start-up is short.
        for (const p of ports) {
          const args = [...profile, RELAY_CLI, 'serve', '--port', String(p), ...store, '--log-level', 'silent', ...relayLimitFlags()];
          nodes.push(await startProcess(cpu, nice, process.execPath, args, p, `${name} hub on ${p}`));
        }
      } catch (error) {
        await stop();
        throw error;
      }
      return {
        endpoints: ports.map((p) => ({ host: '127.0.0.1', port: p })),
        pids: [...nodes, ...redis].map((p) => p.pid),
        stop,
      };
    },
  };
}

/** Installs Debian's redis-server when missing; a reason when that fails. */
export function ensureRedis(): string | undefined {
  return ensureDebianPackages(['redis-server'], () => spawnSync(REDIS_SERVER, ['--version']).status === 0, 'redis-server');
}

/**
 * Installs `packages` with apt-get unless `present()` already holds (once more after an
 * `apt-get update` when the first attempt fails); a reason when they are still missing.
 */
function ensureDebianPackages(packages: readonly string[], present: () => boolean, what: string): string | undefined {
  if (present()) return undefined;
  process.stderr.write(`${what}: installing ${packages.join(' and ')} (apt-get)\n`);
  const install = (): boolean =>
    spawnSync('apt-get', ['install', '-y', '-q', ...packages], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300_000,
    }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update', '-q'], { stdio: 'ignore', timeout: 300_000 });
    install();
  }
  return present() ? undefined : `${packages.join(' with ')} could not be installed (apt-get failed)`;
}

/** The built CLI, `dist/src/cli/main.js`. */
export const RELAY_CLI_PATH = RELAY_CLI;

let serveHelp: string | undefined;
/** True when this build's `sse-relay serve` has the option `flag` (e.g. `--redis-shards`). */
export function relayHasOption(flag: string): boolean {
  serveHelp ??= spawnSync(process.execPath, [RELAY_CLI, 'serve', '--help'], { encoding: 'utf8' }).stdout ?? '';
  return new RegExp(`${flag}[ ,]`).test(serveHelp);
}

let limitFlags: string[] | undefined;
/**
 * Flags lifting sse-relay's connection caps, for the versions that have them: the bench opens
 * 10,000 streams from one address and publishes on long-lived keep-alive connections.
 */
export function relayLimitFlags(): string[] {
  if (limitFlags) return limitFlags;
  const wanted: [string, string][] = [
    ['--max-connections', '1000000'],
    ['--max-connections-per-ip', '1000000'],
    ['--max-requests-per-socket', '0'],
  ];
  limitFlags = wanted.filter(([flag]) => relayHasOption(flag)).flat();
  return limitFlags;
}

function nodePeer(name: string, description: string, script: string): PeerAdapter {
  const file = path.join(DIST, script);
  return {
    name,
    description,
    ...MESSAGES_ROUTES,
    unavailable: () => (existsSync(file) ? undefined : `${file} not built`),
    start: ({ port, cpu, cpuProfileDir, nice }) => {
      const profile = cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : [];
      return startProcess(cpu, nice, process.execPath, [...profile, file, '--port', String(port)], port, name).then(single);
    },
  };
}

const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';
let nchanProblem: string | undefined | null = null;

function nchanPeer(): PeerAdapter {
  return {
    name: 'nchan',
    description: 'nginx + Debian libnginx-mod-nchan, 1 worker, memory store',
    ...MESSAGES_ROUTES,
    unavailable: () => {
      if (nchanProblem === null) nchanProblem = ensureNchan();
      return nchanProblem;
    },
    start: ({ port, workDir, cpu, nice }) => {
      const conf = path.join(workDir, 'nginx.conf');
      for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(workDir, dir), { recursive: true });
      writeFileSync(conf, nchanConfig(port, workDir));
      return startProcess(cpu, nice, 'nginx', ['-p', workDir, '-c', conf, '-e', path.join(workDir, 'error.log')], port, 'nchan').then(single);
    },
  };
}

/** Installs nginx and the nchan module from Debian when missing; a reason when that fails. */
function ensureNchan(): string | undefined {
  const present = (): boolean => existsSync(NCHAN_MODULE) && spawnSync('nginx', ['-v']).status === 0;
  return ensureDebianPackages(['nginx', 'libnginx-mod-nchan'], present, 'nchan');
}

/**
 * A private nginx: one worker, everything (pid, logs, temp files) in `dir`, loopback only.
 * Subscribers get only new messages (`newest`), as on the other peers; messages are kept in
 * nchan's shared-memory store.
 */
export function nchanConfig(port: number, dir: string): string {
  return `load_module ${NCHAN_MODULE};
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 30000;
events { worker_connections 30000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  nchan_max_reserved_memory 256M;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location ~ ^/messages/subscribe/(.+)$ {
      nchan_subscriber eventsource;
      nchan_channel_id $1;
      nchan_subscriber_first_message newest;
    }
    location ~ ^/messages/(.+)$ {
      nchan_publisher;
      nchan_channel_id $1;
      nchan_message_buffer_length 10;
      nchan_message_timeout 60s;
    }
  }
}
`;
}

/** One started server process. */
export interface ServerProcess {
  readonly pid: number;
  stop(): Promise<void>;
}

/** A peer of one process listening on one port of loopback. */
function single(server: ServerProcess & { readonly port: number }): RunningPeer {
  return { endpoints: [{ host: '127.0.0.1', port: server.port }], pids: [server.pid], stop: () => server.stop() };
}

/**
 * Spawns `taskset -c cpu command args` with the soft limit of open files raised to the hard one,
 * and resolves once `port` accepts connections.
 */
export async function startProcess(
  cpu: string | undefined,
  nice: number | undefined,
  command: string,
  args: string[],
  port: number,
  name: string,
): Promise<ServerProcess & { readonly port: number }> {
  const niceness = nice === undefined ? [] : ['nice', '-n', String(nice)];
  const pin = cpu === undefined ? [] : ['taskset', '-c', cpu];
  const child = spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...niceness, ...pin, command, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    if (stderr.length < 10_000) stderr += c;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => (dead = true));
  const deadline = Date.now() + 20_000;
  while (!(await accepts(port))) {
    if (dead) throw new Error(`${name} exited before listening: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not listen on ${port} within 20 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // sh, nice and taskset exec the command, so the child's pid is the server's.
  return { pid: child.pid!, port, stop: () => stopProcess(child, exited) };
}

async function stopProcess(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  // Long enough for a V8 CPU profile to be written.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** True when `taskset` can pin to `cpu` here. */
export function canPin(cpu: string): boolean {
  try {
    execFileSync('taskset', ['-c', cpu, 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
