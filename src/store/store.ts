import type { Message, MessageDraft } from '../hub/message.js';
import type { ConsumerLog } from './consumer-log.js';
import type { PositionVector } from './position-vector.js';

/**
 * Where a subscriber resumes: replay every retained message with `seq > afterSeq`.
 * `gap` is true when messages the subscriber should have received may be gone (the cursor was
 * unknown, pruned, or from another store); the subscriber is told so.
 */
export interface Cursor {
  /** One-shard stores: the position. A sharded store sets it to `after[0]`. */
  readonly afterSeq: number;
  /** A sharded store: the position per shard (index = shard); absent means `[afterSeq]`. */
  readonly after?: PositionVector | undefined;
  readonly gap: boolean;
}

/** What to replay. */
export interface ReadQuery {
  /** Only messages with `seq > afterSeq` (one shard; `after[0]` on a sharded store). */
  readonly afterSeq: number;
  /** A sharded store: only the copies past `after[shard]` on each shard; absent: `[afterSeq]`. */
  readonly after?: PositionVector | undefined;
  /** Only messages published to at least one of these topics; undefined reads every topic. */
  readonly topics?: readonly string[] | undefined;
  /** At most this many messages, the oldest first. */
  readonly limit: number;
}

/** What `GET /messages/:id` reports about one topic. */
export interface TopicStats {
  readonly retained: number;
  readonly firstId: string | null;
  readonly lastId: string | null;
}

/**
 * Called with each committed message, once, in `seq` order. It must not throw (the hub's
 * dispatcher does not); a store treats a throw as a bug, not as a failed append.
 */
export type AppendListener = (message: Message) => void;

/** Most drafts one `appendAll` takes: one transaction (SQLite) or script call (Redis) holds them. */
export const MAX_APPEND_ALL = 1000;

/** How long and how much history is kept. 0 disables a limit. */
export interface RetentionOptions {
  /** Messages kept per topic (default 1000). */
  readonly maxMessagesPerTopic: number;
  /** Age in milliseconds after which messages are pruned (default 24 h). */
  readonly maxAgeMs: number;
  /**
   * Messages one acknowledged consumer may hold past retention (default
   * 10,000); past it its oldest are released (see ConsumerLog).
   */
  readonly consumerMaxPending?: number;
}

/**
 * The hub's message log. Guarantees every implementation keeps (checked by
 * `test/contract/store-contract.ts`, run against each of them):
 *
 * - **Ordering.** `seq` is a positive safe integer, strictly increasing in commit order and
 *   never reused, also across restarts of a durable store.
 * - **Durability at acknowledgement.** `append` resolves only once the message is committed to
 *   the store's medium (memory: the process; SQLite: the WAL; Redis: the server). A rejected
 *   append stored nothing.
 * - **Dispatch.** The append listener sees every committed message exactly once, in `seq`
 *   order, before the `append` promise of that message resolves (so a publisher's 200 never
 *   overtakes delivery). With several hub processes on one store it also sees other nodes'
 *   messages.
 * - **Replay.** `read` returns committed messages in `seq` order; a message the listener has
 *   seen is visible to `read` (until retention prunes it).
 * - **Topics.** A topic listed twice in one draft counts once.
 * - **Retention.** Per-topic count and age limits are applied incrementally in the background;
 *   pruning a topic's messages is remembered so that `resolveCursor` can report the gap.
 */
export interface Store {
  /** A short name for logs and metrics: `memory`, `sqlite`, `redis`. */
  readonly kind: string;
  /** Opens the medium; rejects with HUB_ERR_STORE_OPEN naming the problem. */
  open(): Promise<void>;
  /** Sets the one listener that receives committed messages (the hub's dispatcher). */
  setAppendListener(listener: AppendListener): void;
  /**
   * For a store whose data can vanish under a running hub (Redis restarted without persistence,
   * or flushed): sets the one listener told when it did. Seqs of the new data set may be below
   * those dispatched before, so every open subscription's position is void.
   */
  setDataSetLostListener?(listener: () => void): void;
  /** Stores a validated draft and resolves with the message once it is durable. */
  append(draft: MessageDraft): Promise<Message>;
  /**
   * Optional, for a store whose append does all its work at once (memory): `append` without a
   * promise. When it returns, the message is committed and dispatched; it throws what `append`
   * rejects with. Every guarantee of `append` holds.
   */
  appendNow?(draft: MessageDraft): Message;
  /**
   * Stores drafts all or nothing, with consecutive seqs in their order, and resolves once they
   * are durable; at most {@link MAX_APPEND_ALL} of them.
   */
  appendAll(drafts: readonly MessageDraft[]): Promise<Message[]>;
  /**
   * Turns a client's `Last-Event-ID` into a cursor for the given topics (undefined: all).
   * An id the store does not know (never issued, pruned, or from another store) yields
   * `{ afterSeq: 0, gap: true }`. A position from {@link dispatchedThrough} is known.
   */
  resolveCursor(lastEventId: string, topics?: readonly string[]): Promise<Cursor>;
  /**
   * The stream position of this process: the highest seq such that every message with a seq up
   * to it has been handed to the append listener (before anything was dispatched, the store's
   * position when it opened). A subscription registered now receives, live, every message after
   * it, so its decimal string is a cursor that `resolveCursor` accepts without a gap (until
   * retention prunes past it). This is what a fresh subscriber's first frame carries.
   */
  dispatchedThrough(): number;
  /**
   * A store with several shards (Redis with `--redis-shards`): how many. Absent: one, and the
   * optional members below are absent too.
   */
  readonly shardCount?: number;
  /** Sharded: {@link dispatchedThrough} per shard (a copy; only followed shards are current). */
  dispatchedVector?(): number[];
  /**
   * Sharded, node-local interest: a subscription to `topics` (undefined: every topic) opened on
   * this node, so the store reads the shards it needs. Resolves once they are followed, with
   * the position at which each shard that was not followed yet starts (its component of the
   * subscription's registration vector: later messages are dispatched). Every call is undone
   * by one {@link unfollow} with the same topics.
   */
  follow?(topics: readonly string[] | undefined): Promise<ReadonlyMap<number, number>>;
  /** Sharded: the subscription of {@link follow} ended; a shard nobody needs is no longer read. */
  unfollow?(topics: readonly string[] | undefined): void;
  /** Named, acknowledged consumers and the messages they hold past retention. */
  readonly consumers: ConsumerLog;
  /** Reads retained history, see {@link ReadQuery}. */
  read(query: ReadQuery): Promise<Message[]>;
  /** Counts what is retained for one topic. */
  topicStats(topic: string): Promise<TopicStats>;
  /** True when the store can accept appends now. */
  isReady(): boolean;
  /** Flushes and releases the medium; appends after close reject. */
  close(): Promise<void>;
}
