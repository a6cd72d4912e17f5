import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { ioredis } from './ioredis.js';
import { RelayError } from '../../hub/errors.js';
import { CLUSTER_SCHEME, isClusterUrl, parseClusterUrl, type ClusterAddress } from './cluster-url.js';
import { SCRIPT_DEFINITIONS } from './scripts.js';

/** Where the store reports what an operator should see (connection lost, retrying, back). */
export type RedisStoreLog = (level: 'info' | 'warn' | 'error', message: string, details?: Record<string, unknown>) => void;

/**
 * A connection the store's commands and scripts run on: one server, or a Redis Cluster whose
 * client routes each command (and script, by its first key) to the master of its slot and
 * follows MOVED, ASK and failovers.
 */
export type RedisClient = Redis | Cluster;

/** What the connection needs to know; see RedisStoreOptions for the meaning of each. */
export interface RedisConnectionOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  /** The node's name, put in `CLIENT NAME` so an operator can tell the connections apart. */
  readonly nodeId: string;
  /** How long the read loop's XREAD blocks: its socket may stay silent that long. */
  readonly blockMs: number;
  readonly log: RedisStoreLog;
}

/** Reconnection backoff: 50 ms doubling to this cap. */
const MAX_RETRY_DELAY_MS = 2000;

/**
 * The store's two connections to Redis: `cmd` for appends, scripts and reads (pipelined),
 * `reader` for the read loop's blocking XREAD, which would hold up everything behind it.
 *
 * Both fail fast: no offline queue, a command in flight when the connection drops is failed
 * and never sent again (resending an append could store it twice), `cmd` commands time out
 * after `commandTimeoutMs`. Both reconnect with backoff until `stopRetrying()`; `cmd` logs
 * the loss, the attempts and the return.
 */
export class RedisConnection {
  readonly cmd: RedisClient;
  readonly reader: RedisClient;
  /** The last connection error, for the messages of HUB_ERR_STORE_UNAVAILABLE. */
  lastError = '';
  private retrying = true;
  /** For log lines: connected once (so a later close is a loss), and down since. */
  private connectedOnce = false;
  private down = false;

  /** Builds the clients, not yet connected; throws HUB_ERR_STORE_OPEN for a URL ioredis refuses. */
  constructor(private readonly options: RedisConnectionOptions) {
    try {
      this.cmd = this.createClient('cmd');
      this.reader = this.createClient('reader');
    } catch (error) {
      throw new RelayError('HUB_ERR_STORE_OPEN', `Cannot use the Redis URL: ${describeError(error)}`, { cause: error });
    }
    this.cmd.on('error', (error: Error) => {
      this.lastError = describeError(error);
    });
    this.reader.on('error', () => {});
    this.cmd.on('ready', () => {
      if (this.down) this.options.log('info', `Connected to Redis at ${this.where}`);
      // The first connection is checked by connect(), which can still refuse to start.
      if (this.connectedOnce) void this.checkServer();
      this.connectedOnce = true;
      this.down = false;
    });
  }

  /** Where Redis is, without credentials, for log lines. */
  get where(): string {
    return describeWhere(this.options.url);
  }

  /** Both connections are up. */
  isReady(): boolean {
    return this.cmd.status === 'ready' && this.reader.status === 'ready';
  }

  /**
   * Connects both clients. Resolves true once both are connected and the server checked, false
   * when Redis is unreachable (the clients keep retrying in the background). Rejects with
   * HUB_ERR_STORE_OPEN, and disconnects, for what retrying cannot fix: bad credentials, a
   * bad database, a Redis without streams.
   */
  async connect(): Promise<boolean> {
    const first = await Promise.allSettled([this.cmd.connect(), this.reader.connect()]);
    const rejected = first.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as unknown;
    // connect() rejects with "Connection is closed."; the reason came as an 'error' event.
    const failure = rejected === undefined ? undefined : this.lastError || describeError(rejected);
    if (failure !== undefined && isFatal(failure)) {
      this.disconnect();
      throw new RelayError('HUB_ERR_STORE_OPEN', `Cannot open the message store at ${this.where}: ${failure}`, { cause: rejected });
    }
    if (failure !== undefined) {
      this.down = true;
      this.options.log('warn', `Redis at ${this.where} is unreachable (${failure}); retrying in the background, not ready until connected`);
      return false;
    }
    const problem = await this.checkServer();
    if (problem) {
      this.disconnect();
      throw new RelayError('HUB_ERR_STORE_OPEN', `Cannot open the message store at ${this.where}: ${problem}`);
    }
    return true;
  }

  /** From now on a lost connection stays lost (the store is closing). */
  stopRetrying(): void {
    this.retrying = false;
  }

  /** Drops both connections at once. */
  disconnect(): void {
    this.retrying = false;
    this.cmd.disconnect();
    this.reader.disconnect();
  }

  /** HUB_ERR_STORE_UNAVAILABLE saying why Redis cannot be used now. */
  unavailable(): RelayError {
    return new RelayError('HUB_ERR_STORE_UNAVAILABLE', `Redis at ${this.where} is unreachable${this.lastError ? ` (${this.lastError})` : ''}`);
  }

  /** Maps a Redis failure to the hub's error codes, saying whether the command may have run. */
  storeError(error: unknown): RelayError {
    if (error instanceof RelayError) return error;
    const message = describeError(error);
    if (message.startsWith('OOM')) return new RelayError('HUB_ERR_STORE_FULL', 'Redis is out of memory (maxmemory reached)', { cause: error });
    let detail: string;
    if (/isn't writeable|enableOfflineQueue/.test(message)) detail = this.unavailable().message;
    else if (/timed out|Socket timeout/i.test(message)) detail = `Redis at ${this.where} did not answer in time; the command may or may not have run`;
    else if (/Connection is closed|max retries/i.test(message)) detail = `The connection to Redis at ${this.where} was lost; the command may or may not have run`;
    else detail = `Redis at ${this.where} failed: ${message}`;
    return new RelayError('HUB_ERR_STORE_UNAVAILABLE', detail, { cause: error });
  }

  /** Checks what retrying cannot fix; warns about settings that break the guarantees. */
  private async checkServer(): Promise<string | undefined> {
    try {
      const info = await this.cmd.info();
      const field = (name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
      const version = field('redis_version') ?? '0';
      if (Number(version.split('.')[0]) < 5) {
        const problem = `Redis ${version} has no streams; sse-relay needs Redis 5.0 or later`;
        this.options.log('error', problem);
        return problem;
      }
      const policy = field('maxmemory_policy');
      if (policy && policy !== 'noeviction') {
        this.options.log('warn', `Redis at ${this.where} has maxmemory-policy ${policy}: under memory pressure it may evict sse-relay's keys and lose acknowledged messages; use noeviction`);
      }
      if (field('aof_enabled') === '0') {
        this.options.log('info', `Redis at ${this.where} has no append-only file: a Redis restart loses what was not yet saved (see README, "Running several hub processes")`);
      }
    } catch {
      // INFO may be renamed or denied on managed services; nothing here is essential.
    }
    return undefined;
  }

  private createClient(role: 'cmd' | 'reader'): RedisClient {
    if (!isClusterUrl(this.options.url)) return new (ioredis().Redis)(this.options.url, this.clientOptions(role));
    const address = parseClusterUrl(this.options.url);
    return new (ioredis().Cluster)([...address.nodes], this.clusterOptions(role, address));
  }

  /**
   * The same choices for a cluster: they apply to each node's connection, except the offline
   * queue and the retry, which the cluster client owns (it reconnects to the cluster as a
   * whole; a single master lost fails the commands of its slots until a replica takes over).
   */
  private clusterOptions(role: 'cmd' | 'reader', address: ClusterAddress): ClusterOptions {
    const { retryStrategy, enableOfflineQueue, enableAutoPipelining, scripts, lazyConnect, ...node } = this.clientOptions(role);
    return {
      lazyConnect,
      enableOfflineQueue,
      enableAutoPipelining,
      scripts,
      clusterRetryStrategy: retryStrategy,
      // A command whose connection closed may have run: the cluster client would send it
      // again after refreshing the slots (retryDelayOnFailover), which could store an append
      // twice. MOVED, ASK, TRYAGAIN and CLUSTERDOWN replies mean it did not run, and are still
      // followed or retried.
      retryDelayOnFailover: 0,
      slotsRefreshTimeout: this.options.commandTimeoutMs,
      redisOptions: { ...node, username: address.username, password: address.password },
    };
  }

  private clientOptions(role: 'cmd' | 'reader'): RedisOptions {
    const { commandTimeoutMs, blockMs } = this.options;
    const log = role === 'cmd';
    return {
      lazyConnect: true,
      connectionName: `sse-relay:${this.options.nodeId}:${role}`,
      // RESP2: its stream replies have one stable shape on every Redis from 5.0 on.
      protocol: 2,
      // Fail fast instead of queueing while disconnected: a publish gets its 503 at once.
      enableOfflineQueue: false,
      // A command in flight when the connection drops is failed, never sent again: resending
      // an append could store it twice.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Appends are already one script call per turn; this lets the history reads and cursor
      // resolutions of subscribers arriving in the same turn share its socket write.
      enableAutoPipelining: role === 'cmd',
      connectTimeout: commandTimeoutMs,
      commandTimeout: role === 'cmd' ? commandTimeoutMs : undefined,
      // A server that stops answering: destroy the socket, reconnect, report not ready.
      socketTimeout: role === 'cmd' ? commandTimeoutMs : blockMs + commandTimeoutMs,
      scripts: SCRIPT_DEFINITIONS,
      retryStrategy: (attempt) => {
        if (!this.retrying) return null;
        const delay = Math.min(50 * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
        if (log && this.connectedOnce && !this.down) {
          this.down = true;
          this.options.log('warn', `Lost the connection to Redis at ${this.where}; publishes fail with 503 until it is back, subscribers stay connected`);
        }
        if (log && (attempt <= 3 || attempt % 10 === 0)) {
          this.options.log('warn', `Redis at ${this.where} unreachable (${this.lastError || 'connection closed'}); retrying in ${delay} ms (attempt ${attempt})`);
        }
        return delay;
      },
    };
  }
}

/** `protocol://host:port[/db]` of a store URL: never its credentials. */
export function describeWhere(url: string): string {
  if (isClusterUrl(url)) {
    try {
      return `${CLUSTER_SCHEME}${parseClusterUrl(url).nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',')}`;
    } catch {
      return 'redis-cluster';
    }
  }
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? parsed.pathname : ''}`;
  } catch {
    return 'redis';
  }
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Failures no reconnection can fix. */
function isFatal(reason: string): boolean {
  return /WRONGPASS|NOAUTH|invalid password|ERR AUTH|invalid DB index|DB index is out of range|NOPERM/i.test(reason);
}
