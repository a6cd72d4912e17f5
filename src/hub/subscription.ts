import { encodeMessage } from '../sse/encode.js';
import { covers, formatPosition, isVectorIdForm, parsePosition } from '../store/position-vector.js';
import type { Message } from './message.js';

/**
 * Where a subscription's messages go: the protocol adapter's stream. `deliver` receives the
 * message and its frame, encoded once for all subscribers. A sink that can take no more closes
 * itself and reports `closed`.
 */
export interface SubscriberSink {
  deliver(message: Message, frame: Buffer): void;
  readonly closed: boolean;
  /**
   * Optional flow control for replay: true when delivering a frame of `bytes` now would
   * overflow the subscriber's backlog (and so disconnect it). History can be far larger than
   * the backlog limit, so the hub then awaits {@link writable} before replaying on.
   */
  wouldOverflow?(bytes: number): boolean;
  /** Hands what is queued to the connection; resolves once it can take more (or closed). */
  writable?(): Promise<void>;
  /**
   * Ends the subscriber's stream: `slow-consumer` when it could not keep up, `store-failed`
   * when its history could not be read (it should reconnect and resume), `store-lost` when the
   * store lost its data (it should reconnect: its cursor then yields a gap).
   */
  close(reason: 'slow-consumer' | 'shutdown' | 'store-failed' | 'store-lost'): void;
}

/**
 * A test on a message's topics shared by many subscriptions (Mercure patterns). Filters with the
 * same `key` accept the same topics, so the hub tests each distinct filter once per message and
 * hands the message to all subscriptions behind it.
 */
export interface TopicFilter {
  readonly key: string;
  /** True when the filter accepts one of `topics` (an immutable array: it may be memoized). */
  testAny(topics: readonly string[]): boolean;
}

/** Decides whether a message is for a subscription (topic matching, authorisation). */
export interface SubscriptionSelector {
  /** Which protocol opened it (`messages`, `mercure`), for metrics. */
  readonly api?: string | undefined;
  /** Exact topics this subscription listens to, used to index it; undefined: every topic. */
  readonly topics?: readonly string[] | undefined;
  /**
   * With `topics` undefined: only the messages whose topics this filter accepts (none: every
   * message). The hub groups subscriptions by filter key and tests it once per message.
   */
  readonly filter?: TopicFilter | undefined;
  /** Extra test applied after the topics and the filter (e.g. private updates). */
  readonly accepts?: ((message: Message) => boolean) | undefined;
}

type SubscriptionState = 'replaying' | 'live' | 'closed';

/**
 * One client listening. While its history is being replayed, live messages are held in a
 * bounded buffer; once replay is done the buffer is drained, skipping every message that replay
 * already sent, so the client sees each message once and in order.
 *
 * On a sharded store a message on topics of several shards comes as one copy per shard; the
 * subscription takes only the copy of the lowest shard among the topics it matches (the
 * canonical copy), live and in replay alike, so it gets the message once without remembering
 * anything per message.
 */
export class Subscription {
  state: SubscriptionState = 'replaying';
  /**
   * Highest seq delivered, per shard: deduplicates replay against live and multi-topic
   * messages. One component on every store but a sharded one.
   */
  readonly delivered: number[] = [0];
  /** Live messages held while replaying; allocated only when one arrives (most never do). */
  private held: Message[] | undefined;
  /**
   * Sharded store: the shard count while this subscriber stands past the node's dispatch
   * position on some shard (replay read Redis ahead of the node's read loop, or its cursor came
   * from another node). Live ids then name the per-shard max of both, see {@link liveCopy}.
   */
  private aheadOfNode: number | undefined;

  constructor(
    readonly selector: SubscriptionSelector,
    readonly sink: SubscriberSink,
    private readonly maxHeld: number,
    /**
     * The store's dispatch position when it was registered, per shard: it receives every later
     * message (components of shards the store starts following for it are set once known).
     */
    readonly registeredAt: number[],
  ) {}

  /**
   * Sharded store, before going live: notes whether what was delivered is past the node's
   * dispatch position `node` on some shard (see {@link aheadOfNode}).
   */
  noteNodePosition(node: readonly number[], shardCount: number): void {
    this.aheadOfNode = this.delivered.some((seq, shard) => seq > (node[shard] ?? 0)) ? shardCount : undefined;
  }

  /**
   * The message as this subscriber gets it live. Its id is the node's position after it; while
   * the subscriber is ahead of the node, that id lacks components it was given, and resuming from
   * it would repeat them, so it gets the per-shard max of both instead (a frame of its own, only
   * until the node's position covers it again).
   */
  private liveCopy(message: Message): Message {
    const shardCount = this.aheadOfNode;
    if (shardCount === undefined || !isVectorIdForm(message.id)) return message;
    const node = parsePosition(message.id, shardCount);
    if (node === undefined) return message;
    let ahead = false;
    for (let shard = 0; shard < shardCount; shard++) {
      const mine = shard === (message.shard ?? 0) ? message.seq : (this.delivered[shard] ?? 0);
      if (mine > node[shard]!) {
        node[shard] = mine;
        ahead = true;
      }
    }
    if (!ahead) {
      this.aheadOfNode = undefined;
      return message;
    }
    return { ...message, id: formatPosition(node, shardCount) };
  }

  /** The one-shard registration position (acknowledged consumers work on one-shard stores). */
  get registeredAfterSeq(): number {
    return this.registeredAt[0] ?? 0;
  }

  /** Highest seq delivered on shard 0 (the only one of one-shard stores). */
  get lastSeq(): number {
    return this.delivered[0]!;
  }

  /** True when this subscription takes this copy of the message (see the class comment). */
  isCanonicalCopy(message: Message): boolean {
    const shards = message.topicShards;
    if (shards === undefined || shards.length < 2) return true;
    const { topics, filter } = this.selector;
    let lowest = Infinity;
    for (let i = 0; i < shards.length; i++) {
      if (shards[i]! >= lowest) continue;
      const topic = message.topics[i]!;
      if (topics !== undefined ? topics.includes(topic) : filter === undefined || filter.testAny([topic])) lowest = shards[i]!;
    }
    return lowest === (message.shard ?? 0);
  }

  /**
   * Live dispatch: deliver now, or hold while replaying. Returns 1 when delivered, 0 when
   * skipped or held, -1 when the subscriber cannot take it (closed, or too much held). The hub
   * offers only what the subscription's topics or filter accept. The frame is encoded on the
   * first delivery and kept on the message (see encodeMessage): a message no one takes is
   * never encoded.
   */
  offer(message: Message): 1 | 0 | -1 {
    if (this.state === 'closed' || this.sink.closed) return -1;
    if (covers(this.delivered, message)) return 0;
    if (message.topicShards !== undefined && !this.isCanonicalCopy(message)) return 0;
    if (this.selector.accepts && !this.selector.accepts(message)) return 0;
    if (this.state === 'replaying') {
      const held = (this.held ??= []);
      if (held.length >= this.maxHeld) return -1;
      held.push(message);
      return 0;
    }
    const live = this.liveCopy(message);
    this.delivered[message.shard ?? 0] = message.seq;
    this.sink.deliver(live, encodeMessage(live));
    return this.sink.closed ? -1 : 1;
  }

  /** True when {@link replay} would deliver this stored message (not sent yet, and for it). */
  wants(message: Message): boolean {
    if (covers(this.delivered, message)) return false;
    // Replayed history is read for every topic when there is a filter: test it here.
    if (this.selector.filter && !this.selector.filter.testAny(message.topics)) return false;
    if (message.topicShards !== undefined && !this.isCanonicalCopy(message)) return false;
    return !this.selector.accepts || this.selector.accepts(message);
  }

  /**
   * Replay: deliver a stored message that {@link wants} accepted (the caller tests it first, to
   * skip encoding what is not for this subscriber; testing it again here would run the filter
   * and the authorization twice per message).
   */
  replay(message: Message, frame: Buffer): boolean {
    if (this.state === 'closed' || this.sink.closed) return false;
    this.delivered[message.shard ?? 0] = message.seq;
    this.sink.deliver(message, frame);
    return !this.sink.closed;
  }

  /**
   * Ends replay: sends what was held during it (skipping duplicates) and goes live. Returns how
   * many held messages were delivered.
   */
  goLive(encode: (message: Message) => Buffer): number {
    if (this.state !== 'replaying') return 0;
    const held = this.held ?? [];
    this.held = undefined;
    let delivered = 0;
    for (const message of held) {
      if (this.isClosed) break;
      if (!this.wants(message)) continue;
      const live = this.liveCopy(message);
      if (!this.replay(live, encode(live))) break;
      delivered++;
    }
    if (this.state === 'replaying') this.state = 'live';
    return delivered;
  }

  /** True once unsubscribed or its sink closed (state read afresh, e.g. after an await). */
  get isClosed(): boolean {
    return this.state === 'closed' || this.sink.closed;
  }

  markClosed(): void {
    this.state = 'closed';
    this.held = undefined;
  }
}
