import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import { RelayError } from '../hub/errors.js';
import type { Message, MessageDraft } from '../hub/message.js';
import { appendGroup, groupSizeOf, type GroupedAppend } from './append-group.js';
import { DEFAULT_CONSUMER_MAX_PENDING } from './consumer-log.js';
import { RedisConsumerLog } from './redis-consumers.js';
import { REDIS_SCRIPTS } from './redis-scripts.js';
import { RingBuffer } from './ring-buffer.js';
import type { AppendListener, Cursor, ReadQuery, RetentionOptions, Store, TopicStats } from './store.js';

/** Where the store reports what an operator should see (connection lost, retrying, back). */
export type RedisStoreLog = (level: 'info' | 'warn' | 'error', message: string, details?: Record<string, unknown>) => void;

/** Options of the Redis store. */
export interface RedisStoreOptions extends RetentionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS). */
  readonly url: string;
  /** Prefix of every key (default `sse-relay:`), so several hubs can share one Redis. */
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
}

/** Drafts sent in one script call at most; more go in the next call of the same turn. */
export const REDIS_MAX_BATCH = 1000;
/** Payload bytes (roughly) per script call: a script blocks Redis while it runs. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Entries one XREAD returns at most. */
const READ_COUNT = 1000;
/**
 * How long the read loop's XREAD blocks. Bounded so that a dead server is noticed (no reply
 * within BLOCK + command timeout destroys the socket) and the loop sees `close()`.
 */
const BLOCK_MS = 1000;
/** Rows one retention slice handles; a slice is one script, so this bounds Redis' pause. */
const PRUNE_BUDGET = 2000;
/** Messages read-all may skip (pruned, not yet swept) per script call. */
const READ_SCAN_BUDGET = 10_000;
/**
 * A node that has not reported its read position for this long is taken for dead: the sweep
 * no longer waits for it. A node partitioned from Redis longer than this may miss messages
 * that were pruned meanwhile (it logs a warning when it is back).
 */
const READER_TTL_MS = 30_000;
/** Reconnection backoff: 50 ms doubling to this cap. */
const MAX_RETRY_DELAY_MS = 2000;
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

type StreamEntry = [id: string, fields: string[]];

/**
 * History in Redis, shared by every hub process configured with the same URL and key prefix.
 *
 * Numbering: a Lua script INCRs one sequence key and XADDs each message to ONE stream with
 * the explicit id `<seq>-0`, atomically. So seqs are the same on every node, stream order is
 * seq order, and no node can observe a seq before the ones below it.
 *
 * Dispatch: one read loop per node (a blocking XREAD on its own connection) passes every
 * message, this node's and the others', to the listener once, in stream order. `append`
 * resolves when Redis accepted the message *and* the read loop dispatched it, which keeps the
 * Store contract (listener before resolve) without a reorder buffer: local and remote
 * messages come through the same ordered path. The cost is one read round trip of latency.
 *
 * Appends queued in one event-loop turn go to Redis in one script call, and calls are not
 * awaited before the next is sent (pipelining): under load, one round trip carries a batch.
 *
 * Outage: commands fail at once while disconnected (no offline queue) and after
 * `commandTimeoutMs` while Redis hangs, as HUB_ERR_STORE_UNAVAILABLE; `isReady()` is false.
 * The clients reconnect with backoff; the read loop resumes after the last seq it dispatched,
 * so nothing is skipped or dispatched twice. An append whose reply was lost with the
 * connection is reported unavailable although Redis may have stored it (the outcome of a
 * command in flight is unknown): it is then delivered, never acknowledged.
 *
 * Retention: count limits are applied in the append script; age limits by a background
 * slice. A message no topic retains leaves history at once; its body stays in the stream until
 * every live node's read loop has passed it (see `P dead` in redis-scripts.ts), so pruning can
 * never take a message from under a node that has not dispatched it yet.
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  /** This process's name among the nodes (in `CLIENT LIST` and the readers hash). */
  readonly nodeId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly options: Readonly<Required<Omit<RedisStoreOptions, 'log'>>>;
  private readonly log: RedisStoreLog;
  private readonly keys: {
    readonly seq: string;
    readonly meta: string;
    readonly log: string;
    readonly ids: string;
    readonly refs: string;
    readonly wm: string;
    readonly dead: string;
    readonly idOf: string;
    readonly readers: string;
    readonly readerPrefix: string;
    readonly topicPrefix: string;
  };
  private listener: AppendListener = () => {};
  private dataSetLost: () => void = () => {};
  private cmd: Redis | undefined;
  private reader: Redis | undefined;
  private closed = false;
  /** Set once close() has drained: the read loop ends (it keeps dispatching until then). */
  private stopping = false;
  /** The highest seq the read loop dispatched in the current data set; -1 until it joined. */
  private lastDispatched = -1;
  /** Bumped when the data set changes: a read issued before must not move `lastDispatched`. */
  private dataSetGeneration = 0;
  /**
   * The highest seq this node has seen in any data set. A data set it starts begins above it,
   * so an id a client kept from before never names a message of the new one.
   */
  private highestSeen = 0;
  /** `base` of the data set, to notice a Redis that came back empty. */
  private base: string | undefined;
  private readonly queue = new RingBuffer<PendingAppend>(1024);
  private readonly accepted = new RingBuffer<AcceptedBatch>(64);
  private inFlight = 0;
  private flushImmediate: NodeJS.Immediate | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning = false;
  private readLoopDone: Promise<void> | undefined;
  /** Wakes the read loop when its connection is ready again, or the store closes. */
  private wake: (() => void) | undefined;
  /** Resolves `close()` once nothing is in flight or waiting for dispatch. */
  private onIdle: (() => void) | undefined;
  private batches = 0;
  private lastError = '';
  /** For log lines: connected once (so a later close is a loss), and down since. */
  private connectedOnce = false;
  private down = false;

  readonly consumers: RedisConsumerLog;

  constructor(options: RedisStoreOptions) {
    this.consumers = new RedisConsumerLog(
      options.keyPrefix,
      options.consumerMaxPending ?? DEFAULT_CONSUMER_MAX_PENDING,
      () => this.ready(),
      (work) => this.guard(work),
      (query) => this.read(query),
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
    const p = options.keyPrefix;
    this.keys = Object.freeze({
      seq: `${p}seq`,
      meta: `${p}meta`,
      log: `${p}log`,
      ids: `${p}ids`,
      refs: `${p}refs`,
      wm: `${p}wm`,
      dead: `${p}dead`,
      idOf: `${p}idof`,
      readers: `${p}readers`,
      readerPrefix: `${p}reader:`,
      topicPrefix: `${p}t:`,
    });
  }

  /** Script calls that appended batches so far (for tests and metrics). */
  get batchCount(): number {
    return this.batches;
  }

  /** Where Redis is, without credentials, for log lines. */
  get where(): string {
    try {
      const url = new URL(this.options.url);
      return `${url.protocol}//${url.host}${url.pathname.length > 1 ? url.pathname : ''}`;
    } catch {
      return 'redis';
    }
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
    if (this.cmd) return;
    let cmd: Redis;
    let reader: Redis;
    try {
      cmd = new Redis(this.options.url, this.clientOptions('cmd', true));
      reader = new Redis(this.options.url, this.clientOptions('reader', false));
    } catch (error) {
      throw new RelayError('HUB_ERR_STORE_OPEN', `Cannot use the Redis URL: ${describe(error)}`, { cause: error });
    }
    this.cmd = cmd;
    this.reader = reader;
    cmd.on('error', (error: Error) => {
      this.lastError = describe(error);
    });
    reader.on('error', () => {});
    cmd.on('ready', () => {
      if (this.down) this.log('info', `Connected to Redis at ${this.where}`);
      // The first connection is checked by open(), which can still refuse to start.
      if (this.connectedOnce) void this.checkServer(cmd);
      this.connectedOnce = true;
      this.down = false;
    });
    reader.on('ready', () => this.wake?.());

    const first = await Promise.allSettled([cmd.connect(), reader.connect()]);
    const rejected = first.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as unknown;
    // connect() rejects with "Connection is closed."; the reason came as an 'error' event.
    const failure = rejected === undefined ? undefined : this.lastError || describe(rejected);
    if (failure !== undefined && isFatal(failure)) {
      this.closed = true;
      cmd.disconnect();
      reader.disconnect();
      throw new RelayError('HUB_ERR_STORE_OPEN', `Cannot open the message store at ${this.where}: ${failure}`, { cause: rejected });
    }
    if (failure === undefined) {
      const problem = await this.checkServer(cmd);
      if (problem) {
        this.closed = true;
        cmd.disconnect();
        reader.disconnect();
        throw new RelayError('HUB_ERR_STORE_OPEN', `Cannot open the message store at ${this.where}: ${problem}`);
      }
      // Join before resolving: an append right after open() must find the read loop past
      // every seq below its own.
      await this.join(reader).catch(() => {});
    } else {
      this.down = true;
      this.log('warn', `Redis at ${this.where} is unreachable (${failure}); retrying in the background, not ready until connected`);
    }
    await this.consumers.open();
    this.readLoopDone = this.readLoop(reader);
    this.pruneTimer = setInterval(this.pruneTick, this.options.pruneIntervalMs);
    this.pruneTimer.unref();
  }

  setAppendListener(listener: AppendListener): void {
    this.listener = listener;
  }

  setDataSetLostListener(listener: () => void): void {
    this.dataSetLost = listener;
  }

  /** Connected on both connections and the read loop joined: publishes can succeed now. */
  isReady(): boolean {
    return !this.closed && this.cmd?.status === 'ready' && this.reader?.status === 'ready' && this.lastDispatched >= 0;
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
    const cmd = this.ready();
    const numeric = DECIMAL_SEQ.test(lastEventId) && Number.isSafeInteger(Number(lastEventId));
    const { seq, meta, ids, wm } = this.keys;
    const reply = (await this.guard(
      REDIS_SCRIPTS.resolve.run(cmd, [seq, meta, ids, wm], [lastEventId, numeric ? '1' : '0', topics === undefined ? '1' : '0', ...new Set(topics)]),
    )) as [string, number];
    if (reply[0] === '') return { afterSeq: 0, gap: true };
    return { afterSeq: Number(reply[0]), gap: reply[1] === 1 };
  }

  dispatchedThrough(): number {
    // Before the read loop joined the store is not ready, and no subscription opens.
    return Math.max(0, this.lastDispatched);
  }

  async read(query: ReadQuery): Promise<Message[]> {
    const cmd = this.ready();
    if (query.limit <= 0 || query.topics?.length === 0) return [];
    if (query.topics !== undefined) {
      const keys = [this.keys.log, ...[...new Set(query.topics)].map((t) => this.keys.topicPrefix + t)];
      const entries = (await this.guard(REDIS_SCRIPTS.readTopics.run(cmd, keys, [query.afterSeq, query.limit]))) as StreamEntry[];
      return entries.map(decodeEntry);
    }
    const out: Message[] = [];
    let after = query.afterSeq;
    for (;;) {
      const [entries, last, end] = (await this.guard(
        REDIS_SCRIPTS.readAll.run(cmd, [this.keys.log, this.keys.dead, this.keys.meta], [after, query.limit - out.length, READ_SCAN_BUDGET]),
      )) as [StreamEntry[], string, number];
      for (const entry of entries) out.push(decodeEntry(entry));
      if (end === 1 || out.length >= query.limit) return out;
      after = Number(last);
    }
  }

  async topicStats(topic: string): Promise<TopicStats> {
    const cmd = this.ready();
    const reply = (await this.guard(
      REDIS_SCRIPTS.topicStats.run(cmd, [this.keys.log, this.keys.topicPrefix + topic], []),
    )) as [number, string?, string?, string?, string?];
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
    const cmd = this.cmd;
    if (cmd?.status === 'ready') {
      await Promise.all([
        cmd.hdel(this.keys.readers, this.nodeId),
        cmd.del(this.keys.readerPrefix + this.nodeId),
      ]).catch(() => {});
    }
    this.stopping = true;
    this.reader?.disconnect();
    this.wake?.();
    await this.readLoopDone;
    if (cmd) await cmd.quit().catch(() => cmd.disconnect());
  }

  private clientOptions(role: 'cmd' | 'reader', log: boolean): RedisOptions {
    return {
      lazyConnect: true,
      connectionName: `sse-relay:${this.nodeId}:${role}`,
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
      connectTimeout: this.options.commandTimeoutMs,
      commandTimeout: role === 'cmd' ? this.options.commandTimeoutMs : undefined,
      // A server that stops answering: destroy the socket, reconnect, report not ready.
      socketTimeout: role === 'cmd' ? this.options.commandTimeoutMs : BLOCK_MS + this.options.commandTimeoutMs,
      retryStrategy: (attempt) => {
        if (this.closed) return null;
        const delay = Math.min(50 * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
        if (log && this.connectedOnce && !this.down) {
          this.down = true;
          this.log('warn', `Lost the connection to Redis at ${this.where}; publishes fail with 503 until it is back, subscribers stay connected`);
        }
        if (log && (attempt <= 3 || attempt % 10 === 0)) {
          this.log('warn', `Redis at ${this.where} unreachable (${this.lastError || 'connection closed'}); retrying in ${delay} ms (attempt ${attempt})`);
        }
        return delay;
      },
    };
  }

  /** Checks what retrying cannot fix; warns about settings that break the guarantees. */
  private async checkServer(cmd: Redis): Promise<string | undefined> {
    try {
      const info = await cmd.info();
      const field = (name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
      const version = field('redis_version') ?? '0';
      if (Number(version.split('.')[0]) < 5) {
        const problem = `Redis ${version} has no streams; sse-relay needs Redis 5.0 or later`;
        this.log('error', problem);
        return problem;
      }
      const policy = field('maxmemory_policy');
      if (policy && policy !== 'noeviction') {
        this.log('warn', `Redis at ${this.where} has maxmemory-policy ${policy}: under memory pressure it may evict sse-relay's keys and lose acknowledged messages; use noeviction`);
      }
      if (field('aof_enabled') === '0') {
        this.log('info', `Redis at ${this.where} has no append-only file: a Redis restart loses what was not yet saved (see README, "Running several hub processes")`);
      }
    } catch {
      // INFO may be renamed or denied on managed services; nothing here is essential.
    }
    return undefined;
  }

  /** (Re)registers the read loop; sets `lastDispatched` the first time. */
  private async join(reader: Redis): Promise<void> {
    const position = this.lastDispatched >= 0 ? String(this.lastDispatched) : '';
    const [seq, base, registered] = (await REDIS_SCRIPTS.join.run(
      reader,
      [this.keys.seq, this.keys.meta, this.keys.readers],
      [this.keys.readerPrefix, this.nodeId, position, READER_TTL_MS],
    )) as [string, string, number];
    const lost = this.noteBase(base);
    if (this.lastDispatched < 0) {
      this.lastDispatched = Number(seq);
      this.highestSeen = Math.max(this.highestSeen, this.lastDispatched);
      return;
    }
    if (!lost && registered === 0 && this.base !== undefined) {
      this.log('warn', `This node was away from Redis for more than ${READER_TTL_MS / 1000} s: messages pruned meanwhile may not have reached its subscribers`);
    }
    this.log('info', `Resuming dispatch from Redis after seq ${this.lastDispatched}`);
  }

  /**
   * Remembers which data set this node works on (its `base`); true when Redis now holds
   * another one (or none): it lost its data, in a restart without persistence or a flush.
   */
  private noteBase(base: string): boolean {
    const known = this.base;
    this.base = base === '' ? undefined : base;
    if (known === undefined || base === known) return false;
    this.log('warn', `Redis at ${this.where} lost its data (restarted without persistence, or flushed): earlier history is gone and resuming clients are told of a gap`);
    // The new data set was started by whichever node published first, from its clock and what
    // it had seen: its seqs may lie below this node's watermark, and reading on from there
    // would skip them. Read the new data set from its start instead.
    const start = base === '' ? 0 : Number(base);
    if (start < this.lastDispatched) {
      this.lastDispatched = start;
      this.dataSetGeneration++;
    }
    this.dataSetLost();
    return true;
  }

  /** The one read loop of this node: everything committed, in seq order, exactly once. */
  private async readLoop(reader: Redis): Promise<void> {
    let joined = this.lastDispatched >= 0;
    while (!this.stopping) {
      if (reader.status !== 'ready') {
        joined = false;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (reader.status === 'ready' || this.stopping) resolve();
        });
        this.wake = undefined;
        continue;
      }
      try {
        if (!joined) {
          await this.join(reader);
          joined = true;
        }
        const generation = this.dataSetGeneration;
        const reply = await reader.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.keys.log, `${this.lastDispatched}-0`);
        if (reply && this.base === undefined) {
          // The first messages of a data set this node has not seen begin: learn which one it
          // is before dispatching, or a flush before the next prune tick would go unnoticed.
          // What was read is dispatched even when this fails (Redis went away meanwhile).
          await reader.hget(this.keys.meta, 'base').then(
            (base) => this.noteBase(base ?? ''),
            () => {},
          );
        }
        // Read from a position of the lost data set: the next read starts where the new one does.
        if (reply && generation === this.dataSetGeneration) this.dispatch(reply[0]![1] as StreamEntry[]);
      } catch (error) {
        if (this.stopping) return;
        // The connection may already be back: register again before reading on.
        joined = false;
        // Connection errors end up in the wait above. A server answering with an error (e.g.
        // WRONGTYPE: someone else's key under our prefix) must not spin: wait one block.
        if (reader.status === 'ready') {
          this.log('error', `Reading from Redis failed: ${describe(error)}`);
          await new Promise((resolve) => setTimeout(resolve, BLOCK_MS));
        }
      }
    }
  }

  private dispatch(entries: readonly StreamEntry[]): void {
    for (const entry of entries) {
      const message = decodeEntry(entry);
      // Stream ids increase, and XREAD starts after lastDispatched: this is only defensive.
      if (message.seq <= this.lastDispatched) continue;
      this.lastDispatched = message.seq;
      if (message.seq > this.highestSeen) this.highestSeen = message.seq;
      this.consumers.hold(message);
      try {
        this.listener(message);
      } catch (error) {
        // As in the SQLite store: a throwing dispatcher is a bug that must not stall the loop.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    this.settleAccepted();
  }

  private readonly flush = (): void => {
    this.flushImmediate = undefined;
    while (this.queue.length > 0) this.sendBatch();
  };

  /** Sends one script call with the next drafts of the queue; does not wait for the reply. */
  private sendBatch(): void {
    const pending: PendingAppend[] = [];
    // Base of a data set this batch would start: microseconds of the clock, or above every seq
    // this node has seen when its clock is behind the node that started the lost one.
    const base = Math.max(Date.now() * 1000, this.highestSeen);
    const args: (string | number)[] = [this.keys.topicPrefix, base, this.options.maxMessagesPerTopic, PRUNE_BUDGET];
    let bytes = 0;
    // Groups (appendAll) go whole into one script call, which Redis runs atomically; a group
    // may pass the byte bound when it is the first of its call.
    for (let head = this.queue.peek(); head && pending.length + groupSizeOf(head) <= REDIS_MAX_BATCH && (pending.length === 0 || bytes < MAX_BATCH_BYTES); head = this.queue.peek()) {
      for (let n = groupSizeOf(head); n > 0; n--) {
        const p = this.queue.shift()!;
        const d = p.draft;
        pending.push(p);
        bytes += d.data.length;
        const privateFlag = d.private === undefined ? '' : d.private ? '1' : '0';
        args.push(p.time, p.topics.join('\n'), d.id ?? '', d.data, d.type ?? '', privateFlag, d.retry === undefined ? '' : d.retry);
      }
    }
    const cmd = this.cmd;
    if (!cmd || cmd.status !== 'ready') {
      const error = this.unavailable();
      for (const p of pending) p.reject(error);
      return;
    }
    const { seq, meta, log, ids, refs, wm, dead, idOf } = this.keys;
    this.inFlight++;
    this.batches++;
    REDIS_SCRIPTS.append.run(cmd, [seq, meta, log, ids, refs, wm, dead, idOf], args).then(
      (reply) => {
        this.inFlight--;
        const [first, base] = reply as [number, string];
        this.noteBase(base);
        this.acceptBatch(pending, first);
        this.checkIdle();
      },
      (error: unknown) => {
        this.inFlight--;
        const failure = this.storeError(error);
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
    if (lastSeq > this.highestSeen) this.highestSeen = lastSeq;
    // The reply and the read loop race on two connections: the read loop may be ahead.
    if (lastSeq <= this.lastDispatched) {
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

  private checkIdle(): void {
    if (this.onIdle && this.inFlight === 0 && this.accepted.length === 0) this.onIdle();
  }

  private settleAccepted(): void {
    for (let head = this.accepted.peek(); head && head.lastSeq <= this.lastDispatched; head = this.accepted.peek()) {
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

  private rejectAccepted(error: RelayError, now: number): void {
    for (let head = this.accepted.peek(); head && head.deadline <= now; head = this.accepted.peek()) {
      this.accepted.shift();
      for (const p of head.pending) p.reject(error);
    }
    if (this.accepted.length === 0 && this.deadlineTimer) {
      clearInterval(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    this.checkIdle();
  }

  /** Heartbeat, sweep of dead bodies, then age retention in bounded slices. */
  private readonly pruneTick = (): void => {
    const cmd = this.cmd;
    if (this.pruning || !cmd || cmd.status !== 'ready' || this.lastDispatched < 0) return;
    this.pruning = true;
    void (async () => {
      try {
        const { seq, meta, log, ids, refs, wm, dead, idOf, readers, readerPrefix, topicPrefix } = this.keys;
        const [, base] = (await REDIS_SCRIPTS.sweep.run(
          cmd,
          [readers, dead, log, meta],
          [readerPrefix, this.nodeId, this.lastDispatched, READER_TTL_MS, PRUNE_BUDGET],
        )) as [number, string];
        this.noteBase(base);
        if (this.options.maxAgeMs > 0) {
          for (let more = true; more && !this.closed; ) {
            const [, again] = (await REDIS_SCRIPTS.pruneAge.run(
              cmd,
              [seq, meta, log, ids, refs, wm, dead, idOf],
              [topicPrefix, Date.now() - this.options.maxAgeMs, PRUNE_BUDGET],
            )) as [number, number];
            more = again === 1;
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
    return new RelayError('HUB_ERR_STORE_UNAVAILABLE', `Redis at ${this.where} is unreachable${this.lastError ? ` (${this.lastError})` : ''}`);
  }

  private ready(): Redis {
    if (!this.isReady()) throw this.unavailable();
    return this.cmd!;
  }

  private async guard<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      throw this.storeError(error);
    }
  }

  /** Maps a Redis failure to the hub's error codes, saying whether the command may have run. */
  private storeError(error: unknown): RelayError {
    if (error instanceof RelayError) return error;
    const message = describe(error);
    if (message.startsWith('OOM')) return new RelayError('HUB_ERR_STORE_FULL', 'Redis is out of memory (maxmemory reached)', { cause: error });
    let detail: string;
    if (/isn't writeable|enableOfflineQueue/.test(message)) detail = this.unavailable().message;
    else if (/timed out|Socket timeout/i.test(message)) detail = `Redis at ${this.where} did not answer in time; the command may or may not have run`;
    else if (/Connection is closed|max retries/i.test(message)) detail = `The connection to Redis at ${this.where} was lost; the command may or may not have run`;
    else detail = `Redis at ${this.where} failed: ${message}`;
    return new RelayError('HUB_ERR_STORE_UNAVAILABLE', detail, { cause: error });
  }
}

/** A stream entry as a message. Fields: see redis-scripts.ts. */
function decodeEntry([id, fields]: StreamEntry): Message {
  const seq = Number(id.slice(0, id.indexOf('-')));
  let topics: string[] = [];
  let data = '';
  let time = 0;
  let custom: string | undefined;
  let type: string | undefined;
  let privateFlag: boolean | undefined;
  let retry: number | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const value = fields[i + 1]!;
    switch (fields[i]) {
      case 't':
        topics = value.split('\n');
        break;
      case 'ts':
        time = Number(value);
        break;
      case 'd':
        data = value;
        break;
      case 'i':
        custom = value;
        break;
      case 'y':
        type = value;
        break;
      case 'p':
        privateFlag = value === '1';
        break;
      case 'r':
        retry = Number(value);
        break;
    }
  }
  return { seq, id: custom ?? String(seq), topics, data, type, private: privateFlag, retry, time };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Failures no reconnection can fix. */
function isFatal(reason: string): boolean {
  return /WRONGPASS|NOAUTH|invalid password|ERR AUTH|invalid DB index|DB index is out of range|NOPERM/i.test(reason);
}

