import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { RelayError } from '../../hub/errors.js';
import type { Message, MessageDraft } from '../../hub/message.js';
import { appendGroup, groupSizeOf, type GroupedAppend } from '../append-group.js';
import { RingBuffer } from '../ring-buffer.js';
import { DEFAULT_CONSUMER_MAX_PENDING } from '../consumer-log.js';
import type { AppendListener, Cursor, ReadQuery, RetentionOptions, Store, TopicStats } from '../store.js';
import { decodeEntry, encodeDraft } from './codec.js';
import { RedisConsumerLog } from './consumers.js';
import { isClusterUrl } from './cluster-url.js';
import { describeError, describeWhere, RedisConnection, type RedisClient, type RedisStoreLog } from './connection.js';
import { BLOCK_MS, READER_TTL_MS, ReadLoop } from './read-loop.js';
import { RedisScripts, redisKeys, type RedisKeys } from './scripts.js';
import { shardOf } from './shard-of.js';

export type { RedisStoreLog } from './connection.js';

/** Options of the Redis store. */
export interface RedisStoreOptions extends RetentionOptions {
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS): one server. Or
   * `redis-cluster://[user:password@]host:port[,host:port...]`: seed nodes of a Redis Cluster,
   * whose topology the client discovers.
   */
  readonly url: string;
  /**
   * Prefix of every key (default `sse-relay:`), so several hubs can share one Redis. On a
   * cluster it is also the hash tag, `{sse-relay:}seq`: one data set lives in one slot.
   */
  readonly keyPrefix: string;
  /** How often retention and the sweep of pruned bodies run, in milliseconds (default 1000). */
  readonly pruneIntervalMs?: number;
  /**
   * How long a command may take before it fails with HUB_ERR_STORE_UNAVAILABLE and the
   * connection is considered dead (default 2000). Publishes fail no later than this while
   * Redis hangs; while it refuses connections they fail at once.
   */
  readonly commandTimeoutMs?: number;
  /** Log sink; the default discards. */
  readonly log?: RedisStoreLog;
  /**
   * One shard of a sharded deployment (sharded-redis-store.ts): its keys are under the hash tag
   * `{<keyPrefix><index>}`, it indexes only the topics whose shard is `index`, and it reads
   * only while a local subscription needs it (`follow`). Absent: the single stream.
   */
  readonly shard?: { readonly index: number; readonly count: number } | undefined;
}

/** Drafts sent in one script call at most; more go in the next call of the same turn. */
export const REDIS_MAX_BATCH = 1000;
/** Payload bytes (roughly) per script call: a script blocks Redis while it runs. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Rows one retention slice handles; a slice is one script, so this bounds Redis' pause. */
const PRUNE_BUDGET = 2000;
/** Messages read-all may skip (pruned, not yet swept) per script call. */
const READ_SCAN_BUDGET = 10_000;
const DECIMAL_SEQ = /^[1-9][0-9]{0,15}$/;

interface PendingAppend extends GroupedAppend {
  readonly topics: readonly string[];
  readonly time: number;
}

/** A batch Redis accepted, waiting for the read loop to dispatch its last seq. */
interface AcceptedBatch {
  readonly lastSeq: number;
  readonly pending: readonly PendingAppend[];
  readonly messages: readonly Message[];
  readonly deadline: number;
}

/**
 * History in Redis, shared by every hub process configured with the same URL and key prefix.
 *
 * On a Redis Cluster the whole data set shares one hash tag, so it lives on one master and
 * everything below holds unchanged there; it is not sharded (docs/scaling.md has the plan).
 *
 * Numbering: a Lua script INCRs one sequence key and XADDs each message to ONE stream with
 * the explicit id `<seq>-0`, atomically. So seqs are the same on every node, stream order is
 * seq order, and no node can observe a seq before the ones below it.
 *
 * Dispatch: one read loop per node (read-loop.ts) passes every message, this node's and the
 * others', to the listener once, in stream order. `append` resolves when Redis accepted the
 * message *and* the read loop dispatched it, which keeps the Store contract (listener before
 * resolve) without a reorder buffer: local and remote messages come through the same ordered
 * path. The cost is one read round trip of latency.
 *
 * Appends queued in one event-loop turn go to Redis in one script call, and calls are not
 * awaited before the next is sent (pipelining): under load, one round trip carries a batch.
 *
 * Outage: commands fail at once while disconnected (no offline queue) and after
 * `commandTimeoutMs` while Redis hangs, as HUB_ERR_STORE_UNAVAILABLE; `isReady()` is false.
 * The clients reconnect with backoff (connection.ts); the read loop resumes after the last seq
 * it dispatched. An append whose reply was lost with the connection is reported unavailable
 * although Redis may have stored it (the outcome of a command in flight is unknown): it is
 * then delivered, never acknowledged.
 *
 * Retention: count limits are applied in the append script; age limits by a background
 * slice. A message no topic retains leaves history at once; its body stays in the stream until
 * every live node's read loop has passed it (see `P dead` in scripts.ts), so pruning can
 * never take a message from under a node that has not dispatched it yet.
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  /** This process's name among the nodes (in `CLIENT LIST` and the readers hash). */
  readonly nodeId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly options: Readonly<Required<Omit<RedisStoreOptions, 'log' | 'shard'>>>;
  private readonly shard: RedisStoreOptions['shard'];
  private readonly log: RedisStoreLog;
  private readonly keys: RedisKeys;
  private readonly scripts: RedisScripts;
  private listener: AppendListener = () => {};
  private dataSetLost: () => void = () => {};
  private connection: RedisConnection | undefined;
  private readLoop: ReadLoop | undefined;
  private closed = false;
  private readonly queue = new RingBuffer<PendingAppend>(1024);
  private readonly accepted = new RingBuffer<AcceptedBatch>(64);
  private inFlight = 0;
  private flushImmediate: NodeJS.Immediate | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning = false;
  /**
   * Sharded: the highest seq of this shard its owner has handed on to the hub (Infinity when it
   * holds nothing back): an append resolves once dispatched past it too (sharded-redis-store.ts
   * may hold copies back to merge shards in order).
   */
  private handedThrough: () => number = () => Infinity;
  /** Resolves `close()` once nothing is in flight or waiting for dispatch. */
  private onIdle: (() => void) | undefined;
  private batches = 0;

  readonly consumers: RedisConsumerLog;

  constructor(options: RedisStoreOptions) {
    this.shard = options.shard;
    this.keys = redisKeys(options.keyPrefix, isClusterUrl(options.url), options.shard?.index);
    this.consumers = new RedisConsumerLog(
      this.keys.prefix,
      options.consumerMaxPending ?? DEFAULT_CONSUMER_MAX_PENDING,
      () => this.ready(),
      (work) => this.guard(work),
      (query) => this.read(query),
      () => this.connection?.cmd,
      (level, message, details) => this.log(level, message, details),
    );
    this.options = Object.freeze({
      url: options.url,
      keyPrefix: options.keyPrefix,
      maxMessagesPerTopic: options.maxMessagesPerTopic,
      maxAgeMs: options.maxAgeMs,
      pruneIntervalMs: options.pruneIntervalMs ?? 1000,
      commandTimeoutMs: options.commandTimeoutMs ?? 2000,
      consumerMaxPending: options.consumerMaxPending ?? DEFAULT_CONSUMER_MAX_PENDING,
    });
    this.log = options.log ?? (() => {});
    this.scripts = new RedisScripts(this.keys);
  }

  /** Script calls that appended batches so far (for tests and metrics). */
  get batchCount(): number {
    return this.batches;
  }

  /**
   * On a Redis Cluster, `host:port` of the master serving this data set's hash tag (undefined
   * on one server, or when the cluster cannot say now).
   */
  async master(): Promise<string | undefined> {
    const cmd = this.connection?.cmd;
    if (!isClusterUrl(this.options.url) || !cmd || cmd.status !== 'ready') return undefined;
    try {
      const slot = (await cmd.cluster('KEYSLOT', this.keys.seq)) as number;
      const ranges = (await cmd.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      return range ? `${range[2][0]}:${range[2][1]}` : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Sharded: records the deployment's shard count in this shard's meta (first node to open it),
   * and refuses to open when it names another: a topic's shard depends on the count, so a node
   * started with another one would read and write other topics' histories. Not checked while
   * Redis is unreachable at open (the check then waits for the next start).
   */
  private async claimShardCount(count: number): Promise<void> {
    const cmd = this.connection!.cmd;
    let stored: string | null;
    try {
      await cmd.hsetnx(this.keys.meta, 'shards', String(count));
      stored = await cmd.hget(this.keys.meta, 'shards');
    } catch {
      return;
    }
    // The sharded store closes every shard when one fails to open.
    if (stored !== null && stored !== String(count)) {
      throw new RelayError(
        'HUB_ERR_STORE_OPEN',
        `Redis at ${this.where} holds the history of --redis-shards ${stored} (shard ${this.shard!.index}'s meta); this node was started with --redis-shards ${count}. The count is fixed for a deployment: start every node with ${stored}, or use another --redis-key-prefix`,
      );
    }
  }

  /** Where Redis is, without credentials, for log lines. */
  get where(): string {
    return describeWhere(this.options.url);
  }

  /**
   * Connects both clients. Resolves once connected and joined, or, when Redis is unreachable,
   * right after the first attempt failed: the store then keeps retrying in the background
   * (logging each attempt with its backoff), `isReady()` is false until it succeeds, so the
   * hub can listen and answer `/readyz` meanwhile. Rejects with HUB_ERR_STORE_OPEN for what
   * retrying cannot fix: bad credentials, a bad URL, a Redis without streams.
   */
  async open(): Promise<void> {
    if (this.closed) throw new RelayError('HUB_ERR_STORE_UNAVAILABLE', 'The store is closed');
    if (this.connection) return;
    const connection = new RedisConnection({
      url: this.options.url,
      commandTimeoutMs: this.options.commandTimeoutMs,
      nodeId: this.nodeId,
      blockMs: BLOCK_MS,
      log: this.log,
    });
    this.connection = connection;
    const readLoop = new ReadLoop({
      reader: connection.reader,
      commands: connection.cmd,
      keys: this.keys,
      scripts: this.scripts,
      nodeId: this.nodeId,
      where: () => connection.where,
      log: this.log,
      listener: () => this.holdAndDispatch,
      dataSetLost: () => this.dataSetLost(),
      dispatched: () => this.settleAccepted(),
    });
    this.readLoop = readLoop;
    let connected: boolean;
    try {
      connected = await connection.connect();
    } catch (error) {
      this.closed = true;
      throw error;
    }
    // Join before resolving: an append right after open() must find the read loop past
    // every seq below its own. A shard joins when a subscription needs it (follow).
    if (this.shard) {
      readLoop.pause();
      // On a Cluster each client connects to a master on its first command for it: make that
      // happen now, not on the first publish (which would fail while it connects) or follow.
      if (connected) await Promise.all([connection.cmd.exists(this.keys.seq), connection.reader.exists(this.keys.seq)]).catch(() => {});
      if (connected) await this.claimShardCount(this.shard.count);
    } else if (connected) await readLoop.join().catch(() => {});
    // A shard holds for no consumer (refused with shards): no refresh of their registry.
    if (!this.shard) await this.consumers.open();
    readLoop.start();
    this.pruneTimer = setInterval(this.pruneTick, this.options.pruneIntervalMs);
    this.pruneTimer.unref();
  }

  /** Each message is held for the consumers of its topics before subscribers see it. */
  private readonly holdAndDispatch: AppendListener = (message) => {
    this.consumers.hold(message);
    this.listener(message);
  };

  setAppendListener(listener: AppendListener): void {
    this.listener = listener;
  }

  setDataSetLostListener(listener: () => void): void {
    this.dataSetLost = listener;
  }

  /**
   * Connected on both connections and the read loop joined and reading (or, for a shard no
   * local subscription needs, not meant to read): publishes can succeed now.
   */
  isReady(): boolean {
    const readLoop = this.readLoop;
    if (this.closed || this.connection?.isReady() !== true || readLoop === undefined) return false;
    return readLoop.paused || (readLoop.lastDispatched >= 0 && readLoop.healthy);
  }

  /** Sharded: see {@link handedThrough}; call {@link settle} when it moves. */
  setHandoff(handedThrough: () => number): void {
    this.handedThrough = handedThrough;
  }

  /** Sharded: the last multi-shard ticket at the position the last {@link followShard} started from. */
  get followedFromTicket(): number {
    return this.readLoop?.joinedTicket ?? 0;
  }

  /**
   * Sharded: takes this shard's lock for an append of copies of multi-shard messages, retrying
   * with a short backoff until `deadline` (epoch ms); resolves with the shard's last ticket.
   * Rejects with HUB_ERR_STORE_UNAVAILABLE when the lock stays taken or Redis fails.
   */
  async lock(token: string, leaseMs: number, deadline: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const reply = await this.guard(this.scripts.lock(this.ready(), token, leaseMs));
      if (reply.taken) return reply.ticket;
      const wait = Math.min(1 + Math.random() * Math.min(2 ** attempt, 20), Math.max(1, reply.leftMs));
      if (Date.now() + wait > deadline) {
        throw new RelayError('HUB_ERR_STORE_UNAVAILABLE', `Another publisher held the lock of shard ${this.shard?.index ?? 0} (for messages on several shards) longer than the command timeout`);
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** Sharded: one attempt of {@link lock}; resolves with the last ticket, or undefined when taken. */
  async tryLock(token: string, leaseMs: number): Promise<number | undefined> {
    const reply = await this.guard(this.scripts.lock(this.ready(), token, leaseMs));
    return reply.taken ? reply.ticket : undefined;
  }

  /** Sharded: releases the lock if `token` still holds it; nothing waits for the reply. */
  unlock(token: string): void {
    const cmd = this.connection?.cmd;
    if (cmd?.status === 'ready') this.scripts.unlock(cmd, token).catch(() => {});
  }

  /** Sharded: the shard's last ticket and lock holder, read before a page of replay. */
  fenceState(): Promise<{ ticket: number; holder: string }> {
    return this.guard(this.scripts.fenceState(this.ready()));
  }

  /**
   * Sharded: appends drafts all or nothing in one script call sent now (not queued), only while
   * this shard's lock holds `token`; `tickets[i]` is the ticket of draft i when it is on topics of
   * several shards. Resolves as {@link appendAll} does; rejects with HUB_ERR_STORE_UNAVAILABLE,
   * storing nothing, when the lock expired. `replied` is called once Redis answered the call (or
   * it was not sent): the lock may be released then, before the copies are dispatched.
   */
  appendFenced(drafts: readonly MessageDraft[], token: string, tickets: readonly (number | undefined)[], replied: () => void = () => {}): Promise<Message[]> {
    if (!this.isReady()) {
      replied();
      return Promise.reject(this.unavailable());
    }
    const pending: PendingAppend[] = [];
    const result = appendGroup(drafts, (draft, following, resolve, reject) => pending.push({ draft, following, topics: [...new Set(draft.topics)], time: Date.now(), resolve, reject }));
    this.send(pending, { token, tickets, replied });
    return result;
  }

  /** Sharded: true while the read loop reads this shard. */
  get following(): boolean {
    return this.readLoop !== undefined && !this.readLoop.paused;
  }

  /**
   * Sharded: starts reading this shard from its current position; resolves with it. Appends
   * Redis accepted before it are settled at once (no local subscriber was waiting for them).
   */
  async followShard(): Promise<number> {
    const readLoop = this.readLoop;
    if (!readLoop || this.closed) throw this.unavailable();
    try {
      const position = await readLoop.follow();
      this.settleAccepted();
      return position;
    } catch (error) {
      throw this.storeError(error);
    }
  }

  /**
   * Sharded: stops reading this shard, settles what waits for its dispatch (nobody here is
   * interested any more) and leaves the readers hash (read-loop.ts), so sweeps do not wait for
   * this node.
   */
  unfollowShard(): void {
    const readLoop = this.readLoop;
    if (!readLoop || readLoop.paused) return;
    readLoop.pause();
    this.rejectAccepted(undefined, Infinity);
  }

  append(draft: MessageDraft): Promise<Message> {
    if (!this.isReady()) return Promise.reject(this.unavailable());
    return new Promise<Message>((resolve, reject) => {
      this.queue.push({ draft, topics: [...new Set(draft.topics)], time: Date.now(), resolve, reject });
      this.flushImmediate ??= setImmediate(this.flush);
    });
  }

  appendAll(drafts: readonly MessageDraft[]): Promise<Message[]> {
    if (!this.isReady()) return Promise.reject(this.unavailable());
    const result = appendGroup(drafts, (draft, following, resolve, reject) =>
      this.queue.push({ draft, following, topics: [...new Set(draft.topics)], time: Date.now(), resolve, reject }),
    );
    this.flushImmediate ??= setImmediate(this.flush);
    return result;
  }

  async resolveCursor(lastEventId: string, topics?: readonly string[]): Promise<Cursor> {
    const numeric = DECIMAL_SEQ.test(lastEventId) && Number.isSafeInteger(Number(lastEventId));
    return this.resolveAs(lastEventId, numeric, topics);
  }

  /** Sharded: the cursor at the start of this shard, with a gap when `topics` lost anything. */
  resolveStart(topics?: readonly string[]): Promise<Cursor> {
    return this.resolveAs('', 'start', topics);
  }

  private async resolveAs(lastEventId: string, numeric: boolean | 'start', topics?: readonly string[]): Promise<Cursor> {
    const cmd = this.ready();
    const reply = await this.guard(this.scripts.resolve(cmd, lastEventId, numeric, topics));
    if (reply.seq === '') return { afterSeq: 0, gap: true };
    return { afterSeq: Number(reply.seq), gap: reply.gap };
  }

  dispatchedThrough(): number {
    // Before the read loop joined the store is not ready, and no subscription opens.
    return Math.max(0, this.readLoop?.lastDispatched ?? -1);
  }

  async read(query: ReadQuery): Promise<Message[]> {
    const cmd = this.ready();
    if (query.limit <= 0 || query.topics?.length === 0) return [];
    if (query.topics !== undefined) {
      const entries = await this.guard(this.scripts.readTopics(cmd, query.topics, query.afterSeq, query.limit));
      return entries.map(decodeEntry);
    }
    const out: Message[] = [];
    let after = query.afterSeq;
    for (;;) {
      const { entries, last, end } = await this.guard(this.scripts.readAll(cmd, after, query.limit - out.length, READ_SCAN_BUDGET));
      for (const entry of entries) out.push(decodeEntry(entry));
      if (end || out.length >= query.limit) return out;
      after = last;
    }
  }

  async topicStats(topic: string): Promise<TopicStats> {
    const cmd = this.ready();
    const reply = await this.guard(this.scripts.topicStats(cmd, topic));
    if (reply[0] === 0) return { retained: 0, firstId: null, lastId: null };
    return { retained: reply[0], firstId: reply[2] || reply[1]!, lastId: reply[4] || reply[3]! };
  }

  /**
   * Stops accepting appends, sends what is queued, gives the read loop a moment to dispatch
   * what Redis accepted, leaves the readers hash and disconnects.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.consumers.close();
    this.connection?.stopRetrying();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.flushImmediate) clearImmediate(this.flushImmediate);
    this.flushImmediate = undefined;
    while (this.queue.length > 0) this.sendBatch();
    if (this.inFlight > 0 || this.accepted.length > 0) {
      // Bounded: replies come within the command timeout, dispatch soon after (or never, when
      // Redis is gone, and then the publishers get their 503 below).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.commandTimeoutMs);
        this.onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.onIdle = undefined;
    }
    this.rejectAccepted(new RelayError('HUB_ERR_STORE_UNAVAILABLE', 'The store closed before Redis confirmed the message'), Infinity);
    if (this.deadlineTimer) clearInterval(this.deadlineTimer);
    const connection = this.connection;
    if (!connection) return;
    const cmd = connection.cmd;
    if (cmd.status === 'ready') {
      await Promise.all([
        cmd.hdel(this.keys.readers, this.nodeId),
        cmd.del(this.keys.readerPrefix + this.nodeId),
      ]).catch(() => {});
    }
    await this.readLoop?.stop();
    await cmd.quit().catch(() => cmd.disconnect());
  }

  private readonly flush = (): void => {
    this.flushImmediate = undefined;
    while (this.queue.length > 0) this.sendBatch();
  };

  /** Sends one script call with the next drafts of the queue; does not wait for the reply. */
  private sendBatch(): void {
    const pending: PendingAppend[] = [];
    let bytes = 0;
    // Groups (appendAll) go whole into one script call, which Redis runs atomically; a group
    // may pass the byte bound when it is the first of its call.
    for (let head = this.queue.peek(); head && pending.length + groupSizeOf(head) <= REDIS_MAX_BATCH && (pending.length === 0 || bytes < MAX_BATCH_BYTES); head = this.queue.peek()) {
      for (let n = groupSizeOf(head); n > 0; n--) {
        const p = this.queue.shift()!;
        pending.push(p);
        bytes += p.draft.data.length;
      }
    }
    this.send(pending);
  }

  /** Sends one script call with `pending` (fenced: under the shard's lock); does not wait for the reply. */
  private send(pending: readonly PendingAppend[], fence?: { readonly token: string; readonly tickets: readonly (number | undefined)[]; readonly replied: () => void }): void {
    const values: (string | number)[] = [];
    const topics = new Set<string>();
    for (const p of pending) {
      values.push(...encodeDraft(p.draft, p.topics, p.time));
      for (const topic of p.topics) if (this.owns(topic)) topics.add(topic);
    }
    const cmd = this.connection?.cmd;
    if (!cmd || cmd.status !== 'ready') {
      const error = this.unavailable();
      fence?.replied();
      for (const p of pending) p.reject(error);
      return;
    }
    const readLoop = this.readLoop!;
    this.inFlight++;
    this.batches++;
    const batch = {
      // Base of a data set this batch would start: microseconds of the clock, or above every
      // seq this node has seen when its clock is behind the node that started the lost one.
      base: Math.max(Date.now() * 1000, readLoop.highestSeen),
      maxMessagesPerTopic: this.options.maxMessagesPerTopic,
      pruneBudget: PRUNE_BUDGET,
      topics: [...topics],
      values,
    };
    (fence ? this.scripts.appendFenced(cmd, batch, fence.token, fence.tickets) : this.scripts.append(cmd, batch)).then(
      ({ first, base }) => {
        this.inFlight--;
        fence?.replied();
        readLoop.noteBase(base);
        this.acceptBatch(pending, first);
        this.checkIdle();
      },
      (error: unknown) => {
        this.inFlight--;
        fence?.replied();
        const failure = /^FENCED/.test(describeError(error))
          ? new RelayError('HUB_ERR_STORE_UNAVAILABLE', `The lock of shard ${this.shard?.index ?? 0} expired before the message was stored there (Redis too slow); nothing was stored on that shard`, { cause: error })
          : this.storeError(error);
        for (const p of pending) p.reject(failure);
        this.checkIdle();
      },
    );
  }

  private acceptBatch(pending: readonly PendingAppend[], first: number): void {
    const messages = pending.map((p, i): Message => ({
      seq: first + i,
      id: p.draft.id ?? String(first + i),
      topics: p.topics,
      data: p.draft.data,
      type: p.draft.type,
      private: p.draft.private,
      retry: p.draft.retry,
      time: p.time,
      key: p.draft.key,
    }));
    const lastSeq = first + pending.length - 1;
    const readLoop = this.readLoop!;
    readLoop.noteSeen(lastSeq);
    // The reply and the read loop race on two connections: the read loop may be ahead. A shard
    // this node does not read has no local subscriber to dispatch to before resolving.
    if ((readLoop.paused && !readLoop.joining) || lastSeq <= this.settledThrough()) {
      for (let i = 0; i < pending.length; i++) pending[i]!.resolve(messages[i]!);
      return;
    }
    // One connection executes in order, so batches are accepted in seq order.
    this.accepted.push({ lastSeq, pending, messages, deadline: Date.now() + 5 * this.options.commandTimeoutMs });
    if (!this.deadlineTimer) {
      this.deadlineTimer = setInterval(this.checkDeadlines, 250);
      this.deadlineTimer.unref();
    }
  }

  /** True when `topic` is indexed here: always, but on a shard only its own topics. */
  private owns(topic: string): boolean {
    return this.shard === undefined || shardOf(topic, this.shard.count) === this.shard.index;
  }

  private checkIdle(): void {
    if (this.onIdle && this.inFlight === 0 && this.accepted.length === 0) this.onIdle();
  }

  /** The highest seq dispatched to the hub: read by the loop and handed on by the owner. */
  private settledThrough(): number {
    return Math.min(this.readLoop!.lastDispatched, this.handedThrough());
  }

  /** Sharded: resolves the appends the owner has now handed on (see {@link setHandoff}). */
  settle(): void {
    if (this.readLoop) this.settleAccepted();
  }

  private settleAccepted(): void {
    const through = this.settledThrough();
    for (let head = this.accepted.peek(); head && head.lastSeq <= through; head = this.accepted.peek()) {
      this.accepted.shift();
      for (let i = 0; i < head.pending.length; i++) head.pending[i]!.resolve(head.messages[i]!);
    }
    if (this.accepted.length === 0 && this.deadlineTimer) {
      clearInterval(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    this.checkIdle();
  }

  /**
   * Redis accepted these, but this node's read loop has not dispatched them in time (Redis
   * went away right after): the publisher gets a 503 rather than wait indefinitely; the
   * message is still delivered once the read loop is back.
   */
  private readonly checkDeadlines = (): void => {
    this.rejectAccepted(
      new RelayError('HUB_ERR_STORE_UNAVAILABLE', 'Redis accepted the message but this node lost Redis before confirming its delivery; it may still be delivered'),
      Date.now(),
    );
  };

  /** Rejects (or, with no error, resolves) the accepted batches whose deadline is before `now`. */
  private rejectAccepted(error: RelayError | undefined, now: number): void {
    for (let head = this.accepted.peek(); head && head.deadline <= now; head = this.accepted.peek()) {
      this.accepted.shift();
      if (error === undefined) for (let i = 0; i < head.pending.length; i++) head.pending[i]!.resolve(head.messages[i]!);
      else for (const p of head.pending) p.reject(error);
    }
    if (this.accepted.length === 0 && this.deadlineTimer) {
      clearInterval(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    this.checkIdle();
  }

  /** Heartbeat, sweep of dead bodies, then age retention in bounded slices. */
  private readonly pruneTick = (): void => {
    const cmd = this.connection?.cmd;
    const readLoop = this.readLoop;
    if (this.pruning || !cmd || !readLoop || cmd.status !== 'ready') return;
    // A shard this node does not read: no heartbeat (the sweep would register it as a reader),
    // only age retention, which any node may do.
    if (readLoop.lastDispatched < 0 && !(this.shard && readLoop.paused)) return;
    // A leave that could not be sent when the shard was left (connection down) goes now.
    readLoop.settleRegistration();
    this.pruning = true;
    void (async () => {
      try {
        if (readLoop.lastDispatched >= 0) {
          const base = await this.scripts.sweep(cmd, this.nodeId, () => readLoop.heartbeatPosition(), READER_TTL_MS, PRUNE_BUDGET);
          if (base !== undefined) readLoop.noteBase(base);
        }
        if (this.options.maxAgeMs > 0) {
          for (let more = true; more && !this.closed; ) {
            more = await this.scripts.pruneAge(cmd, Date.now() - this.options.maxAgeMs, PRUNE_BUDGET);
          }
        }
      } catch {
        // Retried on the next tick; a Redis that fails here also fails appends, reported there.
      } finally {
        this.pruning = false;
      }
    })();
  };

  private unavailable(): RelayError {
    if (this.closed) return new RelayError('HUB_ERR_STORE_UNAVAILABLE', 'The store is closed');
    return this.connection?.unavailable() ?? new RelayError('HUB_ERR_STORE_UNAVAILABLE', `Redis at ${this.where} is unreachable`);
  }

  private ready(): RedisClient {
    if (!this.isReady()) throw this.unavailable();
    return this.connection!.cmd;
  }

  private async guard<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      throw this.storeError(error);
    }
  }

  private storeError(error: unknown): RelayError {
    return this.connection ? this.connection.storeError(error) : this.unavailable();
  }
}
