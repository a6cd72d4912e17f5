import { RelayError } from '../hub/errors.js';
import type { Message, MessageDraft } from '../hub/message.js';
import { DEFAULT_CONSUMER_MAX_PENDING } from './consumer-log.js';
import { MemoryConsumerLog } from './memory-consumers.js';
import { firstAfter, RingBuffer } from './ring-buffer.js';
import { MAX_APPEND_ALL, type AppendListener, type Cursor, type ReadQuery, type RetentionOptions, type Store, type TopicStats } from './store.js';

/** Options of the in-memory store. */
export interface MemoryStoreOptions extends RetentionOptions {
  /** Messages kept in all (default 10,000): the bound on the store's memory. */
  readonly maxMessages: number;
  /** How often age-based pruning runs, in milliseconds (default 1000). */
  readonly pruneIntervalMs?: number;
}

/**
 * History in process memory: ephemeral, bounded by `maxMessages` in all and by the per-topic
 * retention limits. Sequence numbers start from the current time in microseconds so that a
 * restarted hub never reissues an id a client may still hold as its cursor.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  private listener: AppendListener = () => {};
  private lastSeq = Date.now() * 1000;
  /** Ids below this were issued by an earlier process (or never): unknown to this store. */
  private readonly firstSeq = this.lastSeq + 1;
  private readonly all = new RingBuffer<Message>(1024);
  private readonly byTopic = new Map<string, RingBuffer<Message>>();
  /** Highest seq pruned per topic; a topic without retained messages is dropped from the maps. */
  private readonly prunedThrough = new Map<string, number>();
  /** Highest seq pruned from any topic: the conservative answer for dropped topics. */
  private prunedThroughAny = 0;
  private readonly customIds = new Map<string, number>();
  private closed = false;
  private pruneTimer: NodeJS.Timeout | undefined;

  readonly consumers: MemoryConsumerLog;

  constructor(private readonly options: MemoryStoreOptions) {
    this.consumers = new MemoryConsumerLog(options.consumerMaxPending ?? DEFAULT_CONSUMER_MAX_PENDING, (topic, afterSeq) => {
      const ring = this.byTopic.get(topic);
      const out: Message[] = [];
      if (ring) for (let i = firstAfter(ring, afterSeq); i < ring.length; i++) out.push(ring.at(i)!);
      return out;
    });
  }

  async open(): Promise<void> {
    if (this.options.maxAgeMs > 0) {
      this.pruneTimer = setInterval(() => this.pruneByAge(), this.options.pruneIntervalMs ?? 1000);
      this.pruneTimer.unref();
    }
  }

  setAppendListener(listener: AppendListener): void {
    this.listener = listener;
  }

  isReady(): boolean {
    return !this.closed;
  }

  async appendAll(drafts: readonly MessageDraft[]): Promise<Message[]> {
    if (drafts.length > MAX_APPEND_ALL) throw new RelayError('HUB_ERR_BATCH_INVALID', `At most ${MAX_APPEND_ALL} messages can be published at once`);
    if (this.closed) throw new RelayError('HUB_ERR_STORE_UNAVAILABLE', 'The store is closed');
    // append does its work synchronously: nothing can fail between the first draft and the last.
    return Promise.all(drafts.map((draft) => this.append(draft)));
  }

  async append(draft: MessageDraft): Promise<Message> {
    return this.appendNow(draft);
  }

  appendNow(draft: MessageDraft): Message {
    if (this.closed) throw new RelayError('HUB_ERR_STORE_UNAVAILABLE', 'The store is closed');
    const seq = ++this.lastSeq;
    const message: Message = {
      seq,
      id: draft.id ?? String(seq),
      topics: [...draft.topics],
      data: draft.data,
      type: draft.type,
      private: draft.private,
      retry: draft.retry,
      time: Date.now(),
      key: draft.key,
      // Declared here so that encoding it later keeps the object's shape (and adds no out-of-object
      // property store to every message).
      encoded: undefined,
    };
    this.all.push(message);
    if (draft.id !== undefined) this.customIds.set(draft.id, seq);
    // Most messages have one topic: no Set to deduplicate them (allocated per publish).
    for (const topic of message.topics.length === 1 ? message.topics : new Set(message.topics)) {
      let ring = this.byTopic.get(topic);
      if (!ring) {
        this.byTopic.set(topic, (ring = new RingBuffer<Message>()));
        // A topic that was emptied earlier may have lost messages a stale cursor still expects.
        if (this.prunedThroughAny > 0) this.prunedThrough.set(topic, this.prunedThroughAny);
      }
      ring.push(message);
      if (this.consumers.holds(topic)) this.consumers.hold(topic, message);
      const limit = this.options.maxMessagesPerTopic;
      if (limit > 0 && ring.length > limit) this.prune(topic, ring.shift()!.seq);
    }
    while (this.all.length > this.options.maxMessages) this.evictOldest();
    this.listener(message);
    return message;
  }

  async resolveCursor(lastEventId: string, topics?: readonly string[]): Promise<Cursor> {
    // An id of the hub's own form is only ever read as a seq: custom ids of that form are
    // refused at publish, and must not shadow a seq (see isReservedEventId).
    const hubForm = /^[1-9][0-9]{0,15}$/.test(lastEventId);
    let seq = hubForm ? undefined : this.customIds.get(lastEventId);
    if (hubForm) {
      const numeric = Number(lastEventId);
      // firstSeq - 1 is the position a subscriber got before the first publish.
      if (Number.isSafeInteger(numeric) && numeric >= this.firstSeq - 1 && numeric <= this.lastSeq) seq = numeric;
    }
    if (seq === undefined) return { afterSeq: 0, gap: true };
    return { afterSeq: seq, gap: this.prunedAfter(seq, topics) };
  }

  dispatchedThrough(): number {
    // Appends dispatch synchronously: every seq issued has been dispatched.
    return this.lastSeq;
  }

  async read(query: ReadQuery): Promise<Message[]> {
    const sources = query.topics === undefined
      ? [this.all]
      : [...new Set(query.topics)].map((t) => this.byTopic.get(t)).filter((r): r is RingBuffer<Message> => !!r);
    const out: Message[] = [];
    const seen = new Set<number>();
    for (const ring of sources) {
      for (let i = firstAfter(ring, query.afterSeq); i < ring.length; i++) {
        const message = ring.at(i)!;
        if (sources.length > 1) {
          if (seen.has(message.seq)) continue;
          seen.add(message.seq);
        }
        if (query.topics === undefined && !this.isRetained(message)) continue;
        out.push(message);
      }
    }
    if (sources.length > 1) out.sort((a, b) => a.seq - b.seq);
    return out.length > query.limit ? out.slice(0, query.limit) : out;
  }

  async topicStats(topic: string): Promise<TopicStats> {
    const ring = this.byTopic.get(topic);
    if (!ring || ring.length === 0) return { retained: 0, firstId: null, lastId: null };
    return { retained: ring.length, firstId: ring.peek()!.id, lastId: ring.at(ring.length - 1)!.id };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
  }

  private prunedAfter(seq: number, topics: readonly string[] | undefined): boolean {
    if (topics === undefined) return this.prunedThroughAny > seq;
    return topics.some((t) => (this.prunedThrough.get(t) ?? (this.byTopic.has(t) ? 0 : this.prunedThroughAny)) > seq);
  }

  /** A message in `all` may already be gone from every topic it was published to. */
  private isRetained(message: Message): boolean {
    return message.topics.some((t) => {
      const ring = this.byTopic.get(t);
      return !!ring && ring.length > 0 && ring.peek()!.seq <= message.seq;
    });
  }

  private prune(topic: string, seq: number): void {
    this.prunedThrough.set(topic, Math.max(this.prunedThrough.get(topic) ?? 0, seq));
    this.prunedThroughAny = Math.max(this.prunedThroughAny, seq);
    const ring = this.byTopic.get(topic);
    if (ring && ring.length === 0) {
      this.byTopic.delete(topic);
      this.prunedThrough.delete(topic);
    }
  }

  private evictOldest(): void {
    const message = this.all.shift();
    if (!message) return;
    if (this.customIds.size > 0 && this.customIds.get(message.id) === message.seq) this.customIds.delete(message.id);
    for (const topic of message.topics.length === 1 ? message.topics : new Set(message.topics)) {
      const ring = this.byTopic.get(topic);
      if (ring && ring.peek()?.seq === message.seq) {
        ring.shift();
        this.prune(topic, message.seq);
      }
    }
  }

  private pruneByAge(): void {
    const oldest = Date.now() - this.options.maxAgeMs;
    // Bounded slice per tick so a large expiry does not hold the event loop.
    for (let i = 0; i < 10_000; i++) {
      const head = this.all.peek();
      if (!head || head.time >= oldest) return;
      this.evictOldest();
    }
  }
}
