import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { ioredis } from '../../store/redis/ioredis.js';
import { RelayError } from '../../hub/errors.js';
import type { MatcherFilter, SubscriptionDocument } from './subscription-document.js';
import { matcherCollectionId } from './subscription-document.js';
import type { RegistryListener, SubscriptionRegistry } from './subscription-registry.js';

/** Options of the Redis subscription registry. */
export interface RedisSubscriptionRegistryOptions {
  /** The store's URL (`redis://…` or `rediss://…`): the registry lives beside the messages. */
  readonly url: string;
  /** The store's key prefix; the registry's keys are `<prefix>subscriptions:…`. */
  readonly keyPrefix: string;
  /**
   * How long a node that stopped heartbeating stays listed, in milliseconds (default 10000).
   * A node heartbeats every fifth of it, so it survives four missed beats (an event loop held
   * for a few seconds) before another node takes it for dead.
   */
  readonly nodeTtlMs?: number;
  /** Where connection problems are reported; the default discards. */
  readonly warn?: (message: string, error?: unknown) => void;
}

/** A dead node's hash is deleted with it; one nobody claimed (every node gone) expires after this. */
const ABANDONED_HASH_TTL_MS = 3_600_000;
/** Nodes one sweep takes over at most, so that a sweep stays short. */
const CLAIMS_PER_SWEEP = 16;
/** Fields one HSCAN step asks for. */
const SCAN_COUNT = 1000;
const COMMAND_TIMEOUT_MS = 2000;
const MAX_RETRY_DELAY_MS = 2000;

// Times come from Redis (TIME), not from each node's clock: nodes whose clocks disagree still
// agree on who is alive.
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: nodes, this node's hash. ARGV: node id, ttl, hash ttl. Returns 1 when the node was known, 0 when it was new or taken over. */
const HEARTBEAT = `${NOW}
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if known then return 1 end
return 0`;

/** KEYS: nodes. ARGV: 'live' or 'expired', limit. The live nodes, or up to `limit` expired ones. */
const NODES = `${NOW}
if ARGV[1] == 'live' then return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf') end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))`;

/**
 * KEYS: nodes, the dead node's hash. ARGV: node id. Atomically takes over an expired node: only
 * one caller gets its documents (the one that announces them ended); nil when it is alive or
 * already taken.
 */
const CLAIM = `${NOW}
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not expiry) or tonumber(expiry) >= now then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
local documents = redis.call('HVALS', KEYS[2])
redis.call('UNLINK', KEYS[2])
return documents`;

/** KEYS: nodes. ARGV: node id. Leaves the live set at once (a clean shutdown). */
const DEPART = `redis.call('ZADD', KEYS[1], 0, ARGV[1]) return 1`;

interface RegistryCommands {
  heartbeat(nodes: string, hash: string, node: string, ttl: number, hashTtl: number): Promise<number>;
  nodes(key: string, which: 'live' | 'expired', limit: number): Promise<string[]>;
  claim(nodes: string, hash: string, node: string): Promise<string[] | null>;
  depart(nodes: string, node: string): Promise<number>;
}

/**
 * Active subscriptions of every hub node on one Redis, so that any node's subscriptions API lists
 * them all.
 *
 * Layout: each node keeps its subscriptions in its own hash (`<prefix>subscriptions:node:<id>`,
 * field: the document's id, value: its JSON) and its liveness in one sorted set
 * (`<prefix>subscriptions:nodes`, score: when its heartbeat runs out, by Redis' clock). A node
 * is listed while its score is in the future.
 *
 * A crash: the node's score runs out after `nodeTtlMs` and it drops out of every list at once;
 * the first node whose sweep (every heartbeat) finds it takes it over atomically (CLAIM), deletes
 * its hash and announces its subscriptions ended (`active: false`), so event followers learn it
 * too. A clean shutdown leaves the set at once and hands its open subscriptions to the same path.
 * A node that was taken for dead but is not (partitioned, or its event loop held past the TTL)
 * finds itself unknown at its next heartbeat, writes its hash again and announces its
 * subscriptions active again.
 *
 * This node's own documents are also kept in memory: after a reconnection the hash is written
 * again from them, so changes that failed while Redis was away are not lost. A separate
 * connection from the message store's: its commands are few and small, and it keeps the store's
 * connections free of anything but messages.
 */
export class RedisSubscriptionRegistry implements SubscriptionRegistry {
  readonly handsOverAtShutdown = true;
  readonly nodeId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly keys: { readonly nodes: string; readonly hashPrefix: string; readonly own: string };
  private readonly ttlMs: number;
  private readonly warn: (message: string, error?: unknown) => void;
  private readonly own = new Map<string, SubscriptionDocument>();
  private listener: RegistryListener = { orphaned: () => {}, reinstated: () => {} };
  private redis: (Redis & RegistryCommands) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private beating = false;
  /** True when the hash must be written again from {@link own} (after a reconnection). */
  private stale = false;
  /** True once a heartbeat went through: an unknown node is then one that was taken over. */
  private registered = false;
  private closed = false;

  constructor(private readonly options: RedisSubscriptionRegistryOptions) {
    const base = `${options.keyPrefix}subscriptions:`;
    this.keys = Object.freeze({ nodes: `${base}nodes`, hashPrefix: `${base}node:`, own: `${base}node:${this.nodeId}` });
    this.ttlMs = options.nodeTtlMs ?? 10_000;
    this.warn = options.warn ?? (() => {});
  }

  setListener(listener: RegistryListener): void {
    this.listener = listener;
  }

  async open(): Promise<void> {
    if (this.redis !== undefined || this.closed) return;
    const redis = new (ioredis().Redis)(this.options.url, {
      lazyConnect: true,
      connectionName: `sse-relay:${this.nodeId}:subscriptions`,
      protocol: 2,
      // Fail at once while disconnected; the hash is written again on reconnection.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableAutoPipelining: true,
      connectTimeout: COMMAND_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (attempt) => (this.closed ? null : Math.min(50 * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS)),
    }) as Redis & RegistryCommands;
    redis.defineCommand('heartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    redis.defineCommand('nodes', { numberOfKeys: 1, lua: NODES });
    redis.defineCommand('claim', { numberOfKeys: 2, lua: CLAIM });
    redis.defineCommand('depart', { numberOfKeys: 1, lua: DEPART });
    // The message store reports connection problems; here they only delay the next beat.
    redis.on('error', () => {});
    let connectedOnce = false;
    redis.on('ready', () => {
      if (connectedOnce) this.stale = true;
      connectedOnce = true;
      void this.beat();
    });
    this.redis = redis;
    this.timer = setInterval(() => void this.beat(), Math.max(50, Math.floor(this.ttlMs / 5)));
    this.timer.unref();
    await redis.connect().catch((error: unknown) => this.warn('the subscriptions registry cannot reach Redis yet; retrying', error));
  }

  async add(documents: readonly SubscriptionDocument[]): Promise<void> {
    for (const document of documents) this.own.set(document.id, document);
    if (documents.length === 0) return;
    const fields = documents.flatMap((document) => [document.id, JSON.stringify(document)]);
    await this.write((redis) => redis.hset(this.keys.own, ...fields));
  }

  async remove(documents: readonly SubscriptionDocument[]): Promise<void> {
    for (const document of documents) this.own.delete(document.id);
    if (documents.length === 0) return;
    await this.write((redis) => redis.hdel(this.keys.own, ...documents.map((document) => document.id)));
  }

  list(matcher: MatcherFilter | undefined, limit: number): Promise<SubscriptionDocument[]> {
    return this.reading(() => this.scan(matcher, limit));
  }

  get(id: string): Promise<SubscriptionDocument | undefined> {
    return this.reading(() => this.find(id));
  }

  private async scan(matcher: MatcherFilter | undefined, limit: number): Promise<SubscriptionDocument[]> {
    const redis = this.connection();
    // Ids contain only unreserved characters and %XX (see expandVariable): no glob character.
    const pattern = matcher === undefined ? '*' : `${matcherCollectionId(matcher)}/*`;
    const listed = new Map<string, SubscriptionDocument>();
    for (const node of await this.liveNodes(redis)) {
      let cursor = '0';
      do {
        const [next, pairs] = await redis.hscan(`${this.keys.hashPrefix}${node}`, cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        cursor = next;
        for (let i = 1; i < pairs.length && listed.size < limit; i += 2) {
          const document = parseDocument(pairs[i]!);
          // HSCAN may return a field twice (while Redis rehashes): the map keeps one.
          if (document !== undefined) listed.set(document.id, document);
        }
      } while (cursor !== '0' && listed.size < limit);
      if (listed.size >= limit) break;
    }
    return [...listed.values()];
  }

  private async find(id: string): Promise<SubscriptionDocument | undefined> {
    const redis = this.connection();
    const nodes = await this.liveNodes(redis);
    const values = await Promise.all(nodes.map((node) => redis.hget(`${this.keys.hashPrefix}${node}`, id)));
    for (const value of values) {
      const document = value === null ? undefined : parseDocument(value);
      if (document !== undefined) return document;
    }
    return undefined;
  }

  /**
   * Leaves the live set at once, keeping the hash: the subscriptions still open drop out of every
   * list now, and a surviving node announces them ended at its next sweep.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const redis = this.redis;
    if (redis === undefined) return;
    await redis.depart(this.keys.nodes, this.nodeId).catch(() => {});
    await redis.quit().catch(() => redis.disconnect());
  }

  /** A write to this node's hash; when it fails, the next heartbeat writes the hash again from memory. */
  private async write(command: (redis: Redis & RegistryCommands) => Promise<unknown>): Promise<void> {
    try {
      await command(this.connection());
    } catch (error) {
      this.stale = true;
      throw error;
    }
  }

  /** A read, whose failure (Redis away, a command timed out) is the API's 503, not a 500. */
  private async reading<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof RelayError) throw error;
      throw new RelayError('HUB_ERR_STORE_UNAVAILABLE', 'The subscriptions registry cannot reach Redis', { cause: error });
    }
  }

  private connection(): Redis & RegistryCommands {
    if (this.redis === undefined || this.redis.status !== 'ready') {
      throw new RelayError('HUB_ERR_STORE_UNAVAILABLE', 'The subscriptions registry cannot reach Redis');
    }
    return this.redis;
  }

  private async liveNodes(redis: Redis & RegistryCommands): Promise<string[]> {
    return redis.nodes(this.keys.nodes, 'live', 0);
  }

  /** Heartbeat, re-sync of this node's hash when needed, then a sweep for dead nodes. */
  private async beat(): Promise<void> {
    const redis = this.redis;
    if (this.beating || this.closed || redis === undefined || redis.status !== 'ready') return;
    this.beating = true;
    try {
      const known = await redis.heartbeat(this.keys.nodes, this.keys.own, this.nodeId, this.ttlMs, ABANDONED_HASH_TTL_MS);
      if (known === 0 || this.stale) {
        // Written from memory: what failed while Redis was away, or what another node deleted
        // when it took this one for dead.
        const documents = [...this.own.values()];
        const write = redis.multi().del(this.keys.own);
        if (documents.length > 0) write.hset(this.keys.own, ...documents.flatMap((d) => [d.id, JSON.stringify(d)]));
        await write.pexpire(this.keys.own, ABANDONED_HASH_TTL_MS).exec();
        this.stale = false;
        if (known === 0 && this.registered && documents.length > 0) this.listener.reinstated(documents);
      }
      this.registered = true;
      for (const node of await redis.nodes(this.keys.nodes, 'expired', CLAIMS_PER_SWEEP)) {
        if (node === this.nodeId) continue;
        const values = await redis.claim(this.keys.nodes, `${this.keys.hashPrefix}${node}`, node);
        if (values === null || values.length === 0) continue;
        const documents = values.map(parseDocument).filter((d): d is SubscriptionDocument => d !== undefined);
        this.listener.orphaned(documents);
      }
    } catch (error) {
      if (!this.closed) this.warn('a subscriptions registry heartbeat failed; retrying', error);
    } finally {
      this.beating = false;
    }
  }
}

/** A document as this registry wrote it; undefined for anything else (never trusted blindly). */
function parseDocument(value: string): SubscriptionDocument | undefined {
  try {
    const parsed = JSON.parse(value) as Partial<SubscriptionDocument> | null;
    if (parsed === null || typeof parsed.id !== 'string' || parsed.type !== 'subscription' || typeof parsed.subscriber !== 'string') return undefined;
    return parsed as SubscriptionDocument;
  } catch {
    return undefined;
  }
}
