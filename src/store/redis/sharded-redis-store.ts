import { randomBytes } from 'node:crypto';
import { RelayError } from '../../hub/errors.js';
import type { Message, MessageDraft } from '../../hub/message.js';
import type { ConsumerLog } from '../consumer-log.js';
import { formatPosition, isVectorIdForm, parsePosition } from '../position-vector.js';
import { RingBuffer } from '../ring-buffer.js';
import { MAX_APPEND_ALL, type AppendListener, type Cursor, type ReadQuery, type Store, type TopicStats } from '../store.js';
import { RedisStore, type RedisStoreOptions } from './redis-store.js';
import { mergeShardHistories, type ShardHistory } from './replay-merge.js';
import { ShardBarrier, type ShardCopy } from './shard-barrier.js';
import { UnsupportedConsumerLog } from './sharded-consumers.js';
import { shardOf } from './shard-of.js';

/** Options of the sharded Redis store: the single store's, and how many shards. */
export interface ShardedRedisStoreOptions extends Omit<RedisStoreOptions, 'shard'> {
  /** Shards of the deployment (2 or more); fixed for its lifetime: a topic's shard depends on it. */
  readonly shards: number;
}

const DIGITS = /^[0-9]+$/;

/** Drafts waiting for a lock round, as one all-or-nothing group per shard. */
interface LockedAppend {
  readonly drafts: readonly MessageDraft[];
  readonly owners: readonly (readonly number[])[];
  readonly resolve: (messages: Message[]) => void;
  readonly reject: (error: unknown) => void;
}
/** RedisStore's default command timeout, from which the lock lease and the merge's waits follow. */
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/**
 * History in Redis split over `shards` data sets (`--redis-shards`, docs/scaling.md), for
 * publish capacity that grows with the masters of a Redis Cluster and nodes that read only
 * what their subscribers need.
 *
 * Shard `k` is a {@link RedisStore} on the hash tag `{<prefix><k>}` with today's keys and
 * scripts; a topic lives on shard `crc32(topic) mod shards` (shard-of.ts). A message on topics
 * of several shards is appended to each (one script call per shard, in parallel), every copy
 * carrying the full topic list; the publish resolves when every copy is stored and dispatched,
 * and fails (503) when one shard refuses, a copy already written still being delivered:
 * atomic per shard, not across shards. A subscription takes one copy per message
 * (Subscription.isCanonicalCopy); `read` returns every copy of the shards it reads.
 *
 * Order per topic, also for a subscriber of topics on several shards: a publisher of such a
 * message first takes the lock of each of its shards (all at once, or when one is taken in
 * ascending order; lease: twice the command timeout), numbers it with a ticket above every ticket those shards hold (a Lamport clock), and
 * appends each copy only while that shard's lock still holds its token (fencing). So copies of
 * such messages are in one order on every shard, and the node merges its shards' read loops
 * (shard-barrier.ts) and replay merges the shards' pages (replay-merge.ts) by ticket, keeping
 * each shard's order. Messages of one shard take no lock.
 *
 * Positions: a message's `seq` counts on its `shard`; the node's dispatch position is a vector,
 * and every event id this store issues is that vector after the message (`v1.<k>:<n>...`,
 * position-vector.ts), so a plain EventSource resumes on any node from any id it saw. Replay
 * rewrites the ids of history to the replaying subscriber's own vector (hub.ts).
 *
 * Node-local interest: a shard is read only while a local subscription needs it (`follow`);
 * patterns and `*` need every shard. A node with no subscriber reads nothing.
 *
 * Not here: acknowledged consumers (refused with HUB_ERR_CONSUMER_UNSUPPORTED), Mercure's
 * shared subscriptions registry (refused at start-up).
 */
export class ShardedRedisStore implements Store {
  readonly kind = 'redis';
  readonly shardCount: number;
  private readonly log: NonNullable<RedisStoreOptions['log']>;
  /** One store per shard, by shard number. */
  readonly shards: readonly RedisStore[];
  readonly consumers: ConsumerLog = new UnsupportedConsumerLog();
  private listener: AppendListener = () => {};
  /** The last seq dispatched on each shard (current only while followed). */
  private readonly dispatched: number[];
  /** Local subscriptions needing each shard. */
  private readonly interest: number[];
  /** A follow being registered, per shard. */
  private readonly joining: (Promise<number> | undefined)[];
  /** Shards this node dispatches (followed and registered). */
  private readonly reading: boolean[];
  private readonly barrier: ShardBarrier;
  private readonly commandTimeoutMs: number;
  /** Appends of this node waiting for their lock round (see {@link appendLocked}). */
  private readonly lockQueue = new RingBuffer<LockedAppend>(64);
  private lockRunning = false;

  constructor(options: ShardedRedisStoreOptions) {
    if (!Number.isSafeInteger(options.shards) || options.shards < 2) throw new RelayError('HUB_ERR_CONFIG_INVALID', 'A sharded Redis store needs 2 or more shards');
    this.shardCount = options.shards;
    this.log = options.log ?? (() => {});
    const { shards: count, ...single } = options;
    this.shards = Array.from({ length: count }, (_, index) => new RedisStore({ ...single, shard: { index, count } }));
    this.dispatched = new Array<number>(count).fill(0);
    this.interest = new Array<number>(count).fill(0);
    this.joining = new Array<Promise<number> | undefined>(count).fill(undefined);
    this.reading = new Array<boolean>(count).fill(false);
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.barrier = new ShardBarrier(
      count,
      {
        shardsOf: (message) => this.shardsOfTopics(message.topics),
        isReading: (shard) => this.reading[shard]!,
        isJoining: (shard) => this.joining[shard] !== undefined,
        hand: (copies) => this.hand(copies),
        handOne: (shard, message) => this.handOne(shard, message),
        settle: (shard) => this.shards[shard]!.settle(),
        log: this.log,
      },
      // A missing copy's publisher had its 503 by then: its lock wait and its append each take
      // at most the command timeout.
      3 * this.commandTimeoutMs,
    );
    this.shards.forEach((shard, index) => {
      shard.setAppendListener((message) => this.barrier.offer(index, message));
      shard.setHandoff(() => this.barrier.handedThrough(index));
    });
  }

  /** Where Redis is, without credentials, for log lines. */
  get where(): string {
    return this.shards[0]!.where;
  }

  /** The shard of a topic. */
  shardOf(topic: string): number {
    return shardOf(topic, this.shardCount);
  }

  async open(): Promise<void> {
    const opened = await Promise.allSettled(this.shards.map((shard) => shard.open()));
    const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(this.shards.map((shard) => shard.close()));
      throw failed.reason;
    }
    void this.logPlacement();
  }

  /**
   * Which master serves each shard (on a Cluster), so an operator can see whether the shards
   * spread: shards on one master share its capacity.
   */
  private async logPlacement(): Promise<void> {
    const masters = await Promise.all(this.shards.map((shard) => shard.master()));
    if (masters.every((m) => m === undefined)) return;
    const byMaster = new Map<string, number[]>();
    masters.forEach((master, shard) => {
      const key = master ?? 'unknown';
      byMaster.set(key, [...(byMaster.get(key) ?? []), shard]);
    });
    const placement = [...byMaster].map(([master, shards]) => `${master}: ${shards.join(', ')}`).join('; ');
    const shared = [...byMaster.values()].some((shards) => shards.length > 1) && byMaster.size < masters.length;
    this.log(shared ? 'warn' : 'info', `Redis shards by master: ${placement}${shared ? ' (shards on one master share its capacity: move their hash tags\' slots to spread them)' : ''}`);
  }

  setAppendListener(listener: AppendListener): void {
    this.listener = listener;
  }

  setDataSetLostListener(listener: () => void): void {
    for (const shard of this.shards) shard.setDataSetLostListener(listener);
  }

  /**
   * Some shard can take appends. A master down fails only its shards' publishes (503 per
   * publish), so the node stays in its load balancer for every other topic; `/readyz` is 503
   * only when no shard is reachable.
   */
  isReady(): boolean {
    return this.shards.some((shard) => shard.isReady());
  }

  /** Multi-shard messages given up on by the node's merge (a copy that never came), for metrics. */
  get missingCopies(): number {
    return this.barrier.timeouts;
  }

  async append(draft: MessageDraft): Promise<Message> {
    const owners = this.shardsOfTopics(draft.topics);
    if (owners.length === 1) {
      const shard = owners[0]!;
      return this.appended(draft, [[shard, await this.shards[shard]!.append(draft)]]);
    }
    return (await this.appendLocked([draft], [owners]))[0]!;
  }

  async appendAll(drafts: readonly MessageDraft[]): Promise<Message[]> {
    const owners = drafts.map((draft) => this.shardsOfTopics(draft.topics));
    if (owners.some((shards) => shards.length > 1)) return this.appendLocked(drafts, owners);
    const perShard = new Map<number, number[]>();
    owners.forEach((shards, i) => {
      for (const shard of shards) {
        let list = perShard.get(shard);
        if (!list) perShard.set(shard, (list = []));
        list.push(i);
      }
    });
    const copies: [number, Message][][] = drafts.map(() => []);
    await Promise.all(
      [...perShard].map(async ([shard, indexes]) => {
        const stored = await this.shards[shard]!.appendAll(indexes.map((i) => drafts[i]!));
        stored.forEach((message, j) => copies[indexes[j]!]!.push([shard, message]));
      }),
    );
    return drafts.map((draft, i) => this.appended(draft, copies[i]!.sort((a, b) => a[0] - b[0])));
  }

  /**
   * Drafts of which some are on topics of several shards. Such appends of this node go in
   * rounds, one at a time: each round takes what was queued meanwhile and locks the union of
   * its shards once (a node does not compete with itself for a lock, and under load one lock
   * round trip carries many messages), see {@link lockRound}.
   */
  private appendLocked(drafts: readonly MessageDraft[], owners: readonly (readonly number[])[]): Promise<Message[]> {
    return new Promise<Message[]>((resolve, reject) => {
      this.lockQueue.push({ drafts, owners, resolve, reject });
      if (!this.lockRunning) void this.runLockRounds();
    });
  }

  private async runLockRounds(): Promise<void> {
    this.lockRunning = true;
    try {
      while (this.lockQueue.length > 0) {
        const round: LockedAppend[] = [];
        let size = 0;
        for (let head = this.lockQueue.peek(); head && (round.length === 0 || size + head.drafts.length <= MAX_APPEND_ALL); head = this.lockQueue.peek()) {
          round.push(this.lockQueue.shift()!);
          size += head.drafts.length;
        }
        let stored: Promise<Message>[];
        try {
          ({ stored } = await this.lockRound(round.flatMap((entry) => entry.drafts), round.flatMap((entry) => entry.owners)));
        } catch (error) {
          for (const entry of round) entry.reject(error);
          continue;
        }
        // Each publish by its own copies: a shard failing in the round fails only the publishes
        // with a copy there (the others were stored and will be delivered).
        let at = 0;
        for (const entry of round) {
          Promise.all(stored.slice(at, at + entry.drafts.length)).then(entry.resolve, entry.reject);
          at += entry.drafts.length;
        }
      }
    } finally {
      this.lockRunning = false;
    }
  }

  /**
   * One round: takes the lock of every shard the drafts touch (all at once, or when one is
   * taken in ascending order: no two publishers can wait for each other), numbers the
   * multi-shard drafts in order with tickets above every ticket of those shards, and appends
   * each shard's part under its lock, the append script releasing it. Resolves once every
   * append replied (the next round may lock), with the promise of each draft's message
   * (`stored`), which resolves once its copies are dispatched, or rejects when an append of one
   * of its own shards failed.
   */
  private async lockRound(drafts: readonly MessageDraft[], owners: readonly (readonly number[])[]): Promise<{ stored: Promise<Message>[] }> {
    const shards = [...new Set(owners.flat())].sort((a, b) => a - b);
    const token = randomBytes(12).toString('base64url');
    // The lease covers the wait for the locks and the append, each bounded by the timeout.
    const leaseMs = 2 * this.commandTimeoutMs;
    const deadline = Date.now() + this.commandTimeoutMs;
    let lastTicket = 0;
    try {
      // First every lock at once (one round trip when free): waiting for none while holding
      // some, it cannot deadlock. When one is taken, release them all and queue in ascending
      // order, which cannot either.
      const tickets = await Promise.all(shards.map((shard) => this.shards[shard]!.tryLock(token, leaseMs)));
      if (tickets.every((ticket) => ticket !== undefined)) lastTicket = Math.max(...tickets);
      else {
        for (const shard of shards) this.shards[shard]!.unlock(token);
        for (const shard of shards) lastTicket = Math.max(lastTicket, await this.shards[shard]!.lock(token, leaseMs, deadline));
      }
    } catch (error) {
      // Every one, also the shard whose lock reply was lost (it may hold it): releasing only
      // compares and deletes.
      for (const shard of shards) this.shards[shard]!.unlock(token);
      throw error;
    }
    let ticket = lastTicket;
    const tickets = owners.map((mine) => (mine.length > 1 ? ++ticket : undefined));
    const replies: Promise<void>[] = [];
    const appends = shards.map((shard) => {
      const indexes = owners.flatMap((mine, i) => (mine.includes(shard) ? [i] : []));
      let replied!: () => void;
      replies.push(new Promise<void>((resolve) => (replied = resolve)));
      // The append script releases the lock; when it failed (or was not sent), release here.
      const stored = this.shards[shard]!.appendFenced(indexes.map((i) => drafts[i]!), token, indexes.map((i) => tickets[i]), replied);
      return stored.then(
        (messages) => new Map(indexes.map((i, j) => [i, messages[j]!])),
        (error: unknown) => {
          this.shards[shard]!.unlock(token);
          throw error;
        },
      );
    });
    const byShard = new Map(shards.map((shard, k) => [shard, appends[k]!]));
    const stored = drafts.map(async (draft, i) => {
      const copies = await Promise.all(
        [...owners[i]!].sort((a, b) => a - b).map(async (shard): Promise<[number, Message]> => {
          const byDraft = await byShard.get(shard)!;
          return [shard, byDraft.get(i)!];
        }),
      );
      return this.appended(draft, copies);
    });
    // Observed by the round's caller once this resolves; a failure before that is not unhandled.
    for (const message of stored) message.catch(() => {});
    await Promise.all(replies);
    return { stored };
  }

  /**
   * The message a publisher gets: the copy of its lowest shard, with (unless custom) the id of
   * its copies' positions, a cursor that resumes its topics right after it.
   */
  private appended(draft: MessageDraft, copies: readonly (readonly [number, Message])[]): Message {
    const [shard, first] = copies[0]!;
    const vector = new Array<number>(this.shardCount).fill(0);
    for (const [k, copy] of copies) vector[k] = copy.seq;
    return { ...first, shard, topicShards: this.topicShardsOf(first.topics), id: draft.id ?? formatPosition(vector, this.shardCount) };
  }

  private handOne(shard: number, message: Message): void {
    this.dispatched[shard] = message.seq;
    this.listener(this.dispatchedCopy(shard, message, undefined));
  }

  /** A copy as the hub gets it: its shard, its topics' shards, and the node's position as id. */
  private dispatchedCopy(shard: number, message: Message, position: string | undefined): Message {
    return {
      ...message,
      shard,
      topicShards: this.topicShardsOf(message.topics),
      // Custom ids cannot be digits only (reserved), so a decimal id is the shard's own.
      id: DIGITS.test(message.id) ? (position ?? formatPosition(this.dispatched, this.shardCount)) : message.id,
    };
  }

  /**
   * Hands copies the barrier released to the hub: the node's position moves past all of them
   * first, so each one's id covers every copy of its message.
   */
  private hand(copies: readonly ShardCopy[]): void {
    for (const { shard, message } of copies) this.dispatched[shard] = message.seq;
    const position = formatPosition(this.dispatched, this.shardCount);
    for (const { shard, message } of copies) this.listener(this.dispatchedCopy(shard, message, position));
  }

  /**
   * A vector id: each shard the topics need from its component (absent: from the shard's
   * start, with a gap when it pruned anything). A decimal id (the single-stream store before
   * sharding) or an unknown one: every needed shard from its start, with a gap (the single
   * stream's keys are not read here). A custom id names one message, not a position: it is
   * trusted only on the shard whose copy the subscription takes (the lowest needed shard holding
   * one, Subscription.isCanonicalCopy); the subscriber may have taken that copy while another
   * shard's loop lagged, so every other needed shard, even one holding a copy, is unknown and
   * read from its start, with a gap. No needed shard holds a copy: unknown, from the start.
   */
  async resolveCursor(lastEventId: string, topics?: readonly string[]): Promise<Cursor> {
    const needed = this.neededShards(topics);
    const after = new Array<number>(this.shardCount).fill(0);
    const vector = parsePosition(lastEventId, this.shardCount);
    if (vector === undefined && !DIGITS.test(lastEventId) && !isVectorIdForm(lastEventId)) return this.resolveCustom(lastEventId, needed);
    const resolved = await Promise.all(
      needed.map(([shard, shardTopics]) => {
        const store = this.shards[shard]!;
        if (vector !== undefined) return vector[shard]! > 0 ? store.resolveCursor(String(vector[shard]), shardTopics) : store.resolveStart(shardTopics);
        return store.resolveStart(shardTopics).then((cursor) => ({ ...cursor, gap: true }));
      }),
    );
    let gap = false;
    for (let i = 0; i < needed.length; i++) {
      const cursor = resolved[i]!;
      after[needed[i]![0]] = cursor.afterSeq;
      gap ||= cursor.gap;
    }
    return { afterSeq: after[0]!, after, gap };
  }

  /** A custom id's cursor: see {@link resolveCursor}. */
  private async resolveCustom(customId: string, needed: readonly [number, string[] | undefined][]): Promise<Cursor> {
    const after = new Array<number>(this.shardCount).fill(0);
    let canonical = -1;
    for (const [shard, shardTopics] of needed) {
      const cursor = await this.shards[shard]!.resolveCursor(customId, shardTopics);
      if (cursor.gap && cursor.afterSeq === 0) continue;
      canonical = shard;
      after[shard] = cursor.afterSeq;
      break;
    }
    if (canonical < 0) return { afterSeq: 0, after, gap: true };
    // Every other needed shard from its start (its component stays 0): a gap, as its position
    // is not known.
    return { afterSeq: after[0]!, after, gap: needed.length > 1 };
  }

  dispatchedThrough(): number {
    return this.dispatched[0]!;
  }

  dispatchedVector(): number[] {
    return [...this.dispatched];
  }

  follow(topics: readonly string[] | undefined): Promise<ReadonlyMap<number, number>> {
    const started = new Map<number, number>();
    const waits: Promise<void>[] = [];
    for (const [shard] of this.neededShards(topics)) {
      this.interest[shard]!++;
      if (this.shards[shard]!.following && this.joining[shard] === undefined) continue;
      let joining = this.joining[shard];
      if (joining === undefined) {
        joining = this.shards[shard]!.followShard().then(
          (position) => {
            this.joining[shard] = undefined;
            this.dispatched[shard] = position;
            this.reading[shard] = true;
            this.barrier.started(shard, this.shards[shard]!.followedFromTicket);
            // Everyone who needed it left while it registered.
            if (this.interest[shard] === 0) this.stopReading(shard);
            return position;
          },
          (error: unknown) => {
            this.joining[shard] = undefined;
            this.barrier.changed();
            throw error;
          },
        );
        this.joining[shard] = joining;
      }
      waits.push(joining.then((position) => void started.set(shard, position)));
    }
    return Promise.all(waits).then(() => started);
  }

  unfollow(topics: readonly string[] | undefined): void {
    for (const [shard] of this.neededShards(topics)) {
      if (--this.interest[shard]! > 0) continue;
      this.interest[shard] = 0;
      if (this.joining[shard] === undefined) this.stopReading(shard);
    }
  }

  /** Stops reading a shard: what its barrier held was for nobody here any more. */
  private stopReading(shard: number): void {
    this.reading[shard] = false;
    this.barrier.stopped(shard);
    this.shards[shard]!.unfollowShard();
  }

  async read(query: ReadQuery): Promise<Message[]> {
    if (query.limit <= 0 || query.topics?.length === 0) return [];
    const after = query.after ?? [query.afterSeq];
    const needed = this.neededShards(query.topics);
    if (needed.length === 1) {
      const [shard, shardTopics] = needed[0]!;
      return (await this.shards[shard]!.read({ afterSeq: after[shard] ?? 0, topics: shardTopics, limit: query.limit })).map((message) => this.stored(shard, message));
    }
    const chunk = Math.ceil(query.limit / needed.length);
    const histories = needed.map(([shard, shardTopics]): ShardHistory => ({
      shard,
      afterSeq: after[shard] ?? 0,
      read: async (afterSeq) => {
        const store = this.shards[shard]!;
        // Sent first on the connection the page is read on: what it says held before the page.
        const fence = store.fenceState();
        const page = store.read({ afterSeq, topics: shardTopics, limit: chunk });
        const [{ ticket, holder }, messages] = await Promise.all([fence, page]);
        return { ticket, holder, messages: messages.map((message) => this.stored(shard, message)) };
      },
    }));
    const wanted = query.topics === undefined ? undefined : new Set(query.topics);
    // Every copy, also of a message on several of the shards read: which one a subscription
    // takes is its own rule (Subscription.isCanonicalCopy), and the hub's replay moves its
    // read position past each copy it was given, taken or not, so paging never stalls. Fewer
    // than `limit` only at the end of every shard.
    return mergeShardHistories(
      histories,
      query.limit,
      chunk,
      (message) => this.shardsOfTopics(wanted === undefined ? message.topics : message.topics.filter((topic) => wanted.has(topic))),
      2 * this.commandTimeoutMs,
    );
  }

  async topicStats(topic: string): Promise<TopicStats> {
    const shard = this.shardOf(topic);
    const stats = await this.shards[shard]!.topicStats(topic);
    const id = (value: string | null): string | null => (value !== null && DIGITS.test(value) ? this.singleId(shard, Number(value)) : value);
    return { retained: stats.retained, firstId: id(stats.firstId), lastId: id(stats.lastId) };
  }

  async close(): Promise<void> {
    this.barrier.close();
    await Promise.all(this.shards.map((shard) => shard.close()));
  }

  /** A message read from history: its shard, and (unless custom) the id of its position alone. */
  private stored(shard: number, message: Message): Message {
    return { ...message, shard, topicShards: this.topicShardsOf(message.topics), id: DIGITS.test(message.id) ? this.singleId(shard, message.seq) : message.id };
  }

  private singleId(shard: number, seq: number): string {
    const vector = new Array<number>(this.shardCount).fill(0);
    vector[shard] = seq;
    return formatPosition(vector, this.shardCount);
  }

  /** The shards of a message's topics, once each, lowest first. */
  private shardsOfTopics(topics: readonly string[]): number[] {
    return [...new Set(topics.map((topic) => this.shardOf(topic)))].sort((a, b) => a - b);
  }

  /** The shard of each topic, for messages on several topics (one topic needs no choice). */
  private topicShardsOf(topics: readonly string[]): number[] | undefined {
    return topics.length > 1 ? topics.map((topic) => this.shardOf(topic)) : undefined;
  }

  /** The shards `topics` live on with their topics there; undefined topics: every shard. */
  private neededShards(topics: readonly string[] | undefined): [number, string[] | undefined][] {
    if (topics === undefined) return this.shards.map((_, shard) => [shard, undefined]);
    const byShard = new Map<number, string[]>();
    for (const topic of new Set(topics)) {
      const shard = this.shardOf(topic);
      let list = byShard.get(shard);
      if (!list) byShard.set(shard, (list = []));
      list.push(topic);
    }
    return [...byShard].sort((a, b) => a[0] - b[0]);
  }
}
