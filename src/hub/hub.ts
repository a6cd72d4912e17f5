import { encodeMessage } from '../sse/encode.js';
import { formatPosition, isVectorIdForm } from '../store/position-vector.js';
import type { Cursor, Store, TopicStats } from '../store/store.js';
import { RelayError } from './errors.js';
import { assertValidDraft, EARLIEST, type Message, type MessageDraft } from './message.js';
import { Subscription, type SubscriberSink, type SubscriptionSelector, type TopicFilter } from './subscription.js';

/** Reads replayed messages after a seq, oldest first, at most `limit`. */
export type HistoryReader = (afterSeq: number, limit: number) => Promise<Message[]>;

/** Options of the hub core. */
export interface HubOptions {
  /** Messages read from the store per replay page (default 500). */
  readonly replayPageSize: number;
  /**
   * Live messages held for one subscriber while its history replays (default 10,000); past
   * that it is disconnected as a slow consumer rather than let memory grow.
   */
  readonly maxHeldDuringReplay: number;
}

export const DEFAULT_HUB_OPTIONS: HubOptions = Object.freeze({ replayPageSize: 500, maxHeldDuringReplay: 10_000 });

/**
 * Hooks for metrics. Called on the hot path, so implementations only add to numbers; the
 * default does nothing.
 */
export interface HubObserver {
  /** A publish was committed by the store after `appendMs` milliseconds. */
  published(message: Message, appendMs: number): void;
  /** A committed message was dispatched, `lagMs` after the store accepted it. */
  dispatched(message: Message, lagMs: number): void;
  /** Live messages written to subscribers (including those held during a replay). */
  delivered(count: number): void;
  /** Messages sent from history to a resuming subscriber. */
  replayed(count: number): void;
  /** A subscriber was disconnected for not keeping up. */
  evicted(): void;
}

const NO_OBSERVER: HubObserver = { published() {}, dispatched() {}, delivered() {}, replayed() {}, evicted() {} };

/**
 * The hub: numbers published messages through its store and dispatches each committed message
 * to every live subscription whose topics it was published to, in commit order. Knows nothing
 * of HTTP; protocol adapters open subscriptions with a sink and publish drafts.
 *
 * Guarantees: every subscriber of a topic receives every message committed to it after the
 * subscription opened, once, in `seq` order; a resuming subscriber receives what was retained
 * after its cursor, then the live stream, with no gap and no duplicate (see `resume`).
 */
export class Hub {
  private readonly byTopic = new Map<string, Set<Subscription>>();
  /** Subscriptions to every topic (no topic index): Mercure's `*`, for instance. */
  private readonly everyTopic = new Set<Subscription>();
  /**
   * Subscriptions with a topic filter (Mercure patterns), grouped by filter key: a message is
   * tested once per distinct filter, not once per subscription, so a publish costs about the
   * same with N subscribers sharing patterns as with N on exact topics (`bench/pattern-cost.ts`).
   */
  private readonly byFilter = new Map<string, { readonly filter: TopicFilter; readonly subscriptions: Set<Subscription> }>();
  /** Every open subscription (its sink is `subscription.sink`). */
  private readonly subscriptions = new Set<Subscription>();
  private closing = false;
  private observer: HubObserver = NO_OBSERVER;
  /** Sharded store: the shards each subscription being opened waits for (see `joined`). */
  private readonly following = new Map<Subscription, Promise<ReadonlyMap<number, number>>>();

  constructor(
    readonly store: Store,
    private readonly options: HubOptions = DEFAULT_HUB_OPTIONS,
  ) {
    store.setAppendListener((message) => this.dispatch(message));
    store.setDataSetLostListener?.(() => this.endAll('store-lost'));
  }

  /** Sets the one observer (metrics). */
  observe(observer: HubObserver): void {
    this.observer = observer;
  }

  /** Opens the store. */
  async start(): Promise<void> {
    await this.store.open();
  }

  /** True when the store has several shards (its ids are position vectors). */
  private get sharded(): boolean {
    return (this.store.shardCount ?? 1) > 1;
  }

  /** True once a shutdown began: nothing more is published. */
  get isShuttingDown(): boolean {
    return this.closing;
  }

  /** True while the hub accepts publishes and subscriptions. */
  isReady(): boolean {
    return !this.closing && this.store.isReady();
  }

  /**
   * Validates every draft, then stores them all or none, with consecutive seqs in their order;
   * resolves once they are committed (and dispatched).
   */
  async publishAll(drafts: readonly MessageDraft[]): Promise<Message[]> {
    for (const draft of drafts) assertValidDraft(draft, this.sharded);
    if (this.closing) throw new RelayError('HUB_ERR_SHUTTING_DOWN');
    const started = performance.now();
    const messages = await this.store.appendAll(drafts);
    const elapsed = performance.now() - started;
    for (const message of messages) this.observer.published(message, elapsed);
    return messages;
  }

  /** Validates and stores a message; resolves once it is committed (and dispatched). */
  async publish(draft: MessageDraft): Promise<Message> {
    return this.publishNow(draft);
  }

  /**
   * {@link publish} without a promise when the store appends synchronously (`appendNow`, the
   * memory store): the committed (and dispatched) message, else a promise of it. Throws
   * synchronously what `publish` would reject with before the store is asked.
   */
  publishNow(draft: MessageDraft): Message | Promise<Message> {
    assertValidDraft(draft, this.sharded);
    if (this.closing) throw new RelayError('HUB_ERR_SHUTTING_DOWN');
    const started = performance.now();
    if (this.store.appendNow !== undefined) {
      const message = this.store.appendNow(draft);
      this.observer.published(message, performance.now() - started);
      return message;
    }
    return this.store.append(draft).then((message) => {
      this.observer.published(message, performance.now() - started);
      return message;
    });
  }

  /**
   * Turns a client's last event id into a cursor. `earliest` replays all that is retained;
   * undefined means "live only" and returns undefined.
   */
  async resolveCursor(lastEventId: string | undefined, topics: readonly string[] | undefined): Promise<Cursor | undefined> {
    if (lastEventId === undefined) return undefined;
    if (lastEventId === EARLIEST) return { afterSeq: 0, gap: false };
    return this.store.resolveCursor(lastEventId, topics);
  }

  /**
   * The event id a stream hands out before its first message, so that a client that drops
   * before receiving one resumes with no gap and no duplicate: for a live-only subscription, the
   * position it was registered at; for a resuming one, where its replay starts. `earliest` when
   * that is the start of the data set.
   */
  startIdOf(subscription: Subscription, cursor: Cursor | undefined): string {
    const vector = cursor === undefined ? subscription.registeredAt : (cursor.after ?? [cursor.afterSeq]);
    return formatPosition(vector, this.store.shardCount ?? 1);
  }

  /** The id of this node's dispatch position (what a fresh subscriber would start from). */
  currentPositionId(): string {
    return formatPosition(this.store.dispatchedVector?.() ?? [this.store.dispatchedThrough()], this.store.shardCount ?? 1);
  }

  /**
   * Waits until the store reads every shard the subscription needs (node-local interest on a
   * sharded store; at once on the others), and completes its registration position with where
   * the shards it started following begin. Call after {@link open}, before {@link startIdOf}.
   * Rejects when the store cannot follow them (Redis unavailable); the caller unsubscribes.
   */
  async joined(subscription: Subscription): Promise<void> {
    const following = this.following.get(subscription);
    if (following === undefined) return;
    this.following.delete(subscription);
    for (const [shard, position] of await following) subscription.registeredAt[shard] = position;
  }

  /**
   * Registers a subscription at once, so that nothing committed from now on can be missed.
   * It holds live messages until {@link resume} has replayed history.
   */
  open(selector: SubscriptionSelector, sink: SubscriberSink): Subscription {
    if (this.closing) throw new RelayError('HUB_ERR_SHUTTING_DOWN');
    // Every message after this seq reaches the subscription live: it is registered before the
    // store dispatches anything more.
    const subscription = new Subscription(selector, sink, this.options.maxHeldDuringReplay, this.store.dispatchedVector?.() ?? [this.store.dispatchedThrough()]);
    this.subscriptions.add(subscription);
    if (this.store.follow) {
      const following = this.store.follow(selector.topics);
      // Observed here so that a subscription closed before `joined` leaves no unhandled rejection.
      following.catch(() => {});
      this.following.set(subscription, following);
    }
    if (selector.topics === undefined) {
      const filter = selector.filter;
      if (filter === undefined) {
        this.everyTopic.add(subscription);
      } else {
        let group = this.byFilter.get(filter.key);
        if (!group) this.byFilter.set(filter.key, (group = { filter, subscriptions: new Set() }));
        group.subscriptions.add(subscription);
      }
    } else {
      for (const topic of new Set(selector.topics)) {
        let set = this.byTopic.get(topic);
        if (!set) this.byTopic.set(topic, (set = new Set()));
        set.add(subscription);
      }
    }
    return subscription;
  }

  /**
   * Replays retained history after `cursor` (none when undefined), then goes live: the messages
   * held while replaying are sent, skipping those replay already sent. When the store fails to
   * read history, the subscription ends (`store-failed`) rather than stay open and silent: its
   * client reconnects and resumes from the last event it received. Never rejects. `history`
   * replaces the store's retained history (an acknowledged consumer replays what it holds).
   */
  async resume(subscription: Subscription, cursor: Cursor | undefined, history?: HistoryReader): Promise<void> {
    if (cursor !== undefined) {
      // The read position per shard, the one representation of where replay stands (a
      // one-shard store's is `after[0]`, its `afterSeq`); advanced by every message read,
      // delivered or not.
      const after = [...(cursor.after ?? [cursor.afterSeq])];
      const sharded = (this.store.shardCount ?? 1) > 1;
      // The client has everything up to its cursor: what it is given next is counted from there
      // (the ids replay issues on a sharded store name the whole position, not only the copies
      // sent on this connection).
      if (sharded) after.forEach((seq, shard) => (subscription.delivered[shard] = Math.max(subscription.delivered[shard] ?? 0, seq)));
      for (;;) {
        if (subscription.state === 'closed') return;
        let page: Message[];
        try {
          page = history
            ? await history(after[0] ?? 0, this.options.replayPageSize)
            : await this.store.read({ afterSeq: after[0] ?? 0, after, topics: subscription.selector.topics, limit: this.options.replayPageSize });
        } catch {
          this.unsubscribe(subscription);
          if (!subscription.sink.closed) subscription.sink.close('store-failed');
          return;
        }
        let sent = 0;
        for (const stored of page) {
          after[stored.shard ?? 0] = stored.seq;
          if (!subscription.wants(stored)) continue;
          // A sharded store's own ids are positions: a replayed one names where this subscriber
          // stands after it (its delivered vector), which only it knows.
          const message = sharded && isVectorIdForm(stored.id) ? { ...stored, id: formatPosition(withCopy(subscription.delivered, stored), this.store.shardCount!) } : stored;
          const frame = encodeMessage(message);
          // Replay goes at the subscriber's pace: retained history may be many times its
          // backlog limit, and queuing it all in one turn would evict every resuming client.
          if (subscription.sink.wouldOverflow?.(frame.length)) {
            await subscription.sink.writable?.();
            if (subscription.isClosed) {
              this.observer.replayed(sent);
              return;
            }
          }
          if (!subscription.replay(message, frame)) {
            this.observer.replayed(sent);
            this.evict(subscription);
            return;
          }
          sent++;
        }
        this.observer.replayed(sent);
        if (page.length < this.options.replayPageSize) break;
      }
    }
    if (subscription.state === 'closed') return;
    if (this.store.dispatchedVector) subscription.noteNodePosition(this.store.dispatchedVector(), this.store.shardCount!);
    this.observer.delivered(subscription.goLive(encodeMessage));
    if (subscription.sink.closed) this.evict(subscription);
  }

  /** Removes a subscription (its client went away). Idempotent. */
  unsubscribe(subscription: Subscription): void {
    if (subscription.state === 'closed' && !this.subscriptions.has(subscription)) return;
    subscription.markClosed();
    if (this.subscriptions.delete(subscription)) {
      this.following.delete(subscription);
      this.store.unfollow?.(subscription.selector.topics);
    }
    if (subscription.selector.topics === undefined) {
      const filter = subscription.selector.filter;
      if (filter === undefined) {
        this.everyTopic.delete(subscription);
        return;
      }
      const group = this.byFilter.get(filter.key);
      if (group && group.subscriptions.delete(subscription) && group.subscriptions.size === 0) this.byFilter.delete(filter.key);
      return;
    }
    for (const topic of new Set(subscription.selector.topics)) {
      const set = this.byTopic.get(topic);
      if (!set) continue;
      set.delete(subscription);
      if (set.size === 0) this.byTopic.delete(topic);
    }
  }

  /**
   * What is retained for `topic`, counting only the messages `visible` accepts (all when it is
   * undefined). With a filter the retained history of the topic is read, page by page: at most
   * `--retention-count` messages, the price of never counting (or naming the id of) a message
   * the caller may not receive.
   */
  async topicStats(topic: string, visible?: (message: Message) => boolean): Promise<TopicStats> {
    const all = await this.store.topicStats(topic);
    if (visible === undefined || all.retained === 0) return all;
    let retained = 0;
    let firstId: string | null = null;
    let lastId: string | null = null;
    const after: number[] = [0];
    for (;;) {
      const page = await this.store.read({ afterSeq: after[0] ?? 0, after, topics: [topic], limit: this.options.replayPageSize });
      for (const message of page) {
        after[message.shard ?? 0] = message.seq;
        if (!visible(message)) continue;
        retained++;
        firstId ??= message.id;
        lastId = message.id;
      }
      if (page.length < this.options.replayPageSize) return { retained, firstId, lastId };
    }
  }

  /** Live subscriptions listening to `topic` by name. */
  subscriberCount(topic: string): number {
    return this.byTopic.get(topic)?.size ?? 0;
  }

  /** All open subscriptions. */
  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Open subscriptions by the protocol that opened them. */
  subscriptionsByApi(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const subscription of this.subscriptions) {
      const api = subscription.selector.api ?? 'unknown';
      counts.set(api, (counts.get(api) ?? 0) + 1);
    }
    return counts;
  }

  /** Number of topics with at least one subscription (for leak checks). */
  get indexedTopicCount(): number {
    return this.byTopic.size;
  }

  /** Number of distinct topic filters with at least one subscription (for leak checks). */
  get filterGroupCount(): number {
    return this.byFilter.size;
  }

  /** Stops accepting publishes and subscriptions and ends every open subscription. */
  beginShutdown(): void {
    this.closing = true;
    this.endAll('shutdown');
  }

  private endAll(reason: 'shutdown' | 'store-lost'): void {
    for (const subscription of [...this.subscriptions]) {
      this.unsubscribe(subscription);
      subscription.sink.close(reason);
    }
  }

  /** Ends everything and closes the store (after in-flight publishes have been answered). */
  async shutdown(): Promise<void> {
    this.beginShutdown();
    await this.store.close();
  }

  private dispatch(message: Message): void {
    let delivered = 0;
    for (const topic of message.topics) {
      const set = this.byTopic.get(topic);
      if (!set) continue;
      for (const subscription of set) {
        const outcome = subscription.offer(message);
        if (outcome < 0) this.evict(subscription);
        else delivered += outcome;
      }
    }
    for (const subscription of this.everyTopic) {
      const outcome = subscription.offer(message);
      if (outcome < 0) this.evict(subscription);
      else delivered += outcome;
    }
    for (const { filter, subscriptions } of this.byFilter.values()) {
      if (!filter.testAny(message.topics)) continue;
      for (const subscription of subscriptions) {
        const outcome = subscription.offer(message);
        if (outcome < 0) this.evict(subscription);
        else delivered += outcome;
      }
    }
    this.observer.dispatched(message, Date.now() - message.time);
    if (delivered > 0) this.observer.delivered(delivered);
  }

  private evict(subscription: Subscription): void {
    this.unsubscribe(subscription);
    this.observer.evicted();
    if (!subscription.sink.closed) subscription.sink.close('slow-consumer');
  }
}

/** `delivered` with the copy `message` taken (a new vector: the subscription's is not moved). */
function withCopy(delivered: readonly number[], message: Message): number[] {
  const vector = [...delivered];
  vector[message.shard ?? 0] = message.seq;
  return vector;
}
