import type { Message } from '../hub/message.js';
import { isSeqId, positionId, type AckOutcome, type ConsumerLog, type ConsumerStart, type ConsumerState, type LostRange } from './consumer-log.js';
import { firstAfter, RingBuffer } from './ring-buffer.js';

interface MutableConsumer {
  readonly topic: string;
  readonly name: string;
  readonly owner: string | null;
  ackedSeq: number;
  ackedId: string;
  lastSeenAt: number;
  lost: LostRange | null;
}

interface HeldTopic {
  /** Messages of the topic after the lowest ack of its consumers, in seq order. */
  readonly held: RingBuffer<Message>;
  readonly consumers: Map<string, MutableConsumer>;
}

/**
 * The memory store's consumers: held messages are references to the store's own message
 * objects, so holding costs a slot in a ring per message and topic, no copy.
 */
export class MemoryConsumerLog implements ConsumerLog {
  private readonly topics = new Map<string, HeldTopic>();

  constructor(
    private readonly maxPending: number,
    /** The store's retained messages of a topic after a seq, oldest first. */
    private readonly retainedAfter: (topic: string, afterSeq: number) => Message[],
  ) {}

  /** True when some consumer holds the topic's messages: the store then calls {@link hold}. */
  holds(topic: string): boolean {
    return this.topics.has(topic);
  }

  /** Called by the store for each committed message of a held topic, before dispatch. */
  hold(topic: string, message: Message): void {
    const entry = this.topics.get(topic);
    if (!entry) return;
    entry.held.push(message);
    for (const consumer of entry.consumers.values()) this.releaseBeyondLimit(entry, consumer);
    this.releaseAcknowledged(entry);
  }

  async attach(topic: string, name: string, start: ConsumerStart, now: number): Promise<ConsumerState> {
    let entry = this.topics.get(topic);
    const existing = entry?.consumers.get(name);
    if (existing) {
      existing.lastSeenAt = now;
      return this.view(entry!, existing);
    }
    if (!entry) this.topics.set(topic, (entry = { held: new RingBuffer<Message>(), consumers: new Map() }));
    // The ring holds everything after the lowest ack: a consumer starting below it brings the
    // retained messages the ring lacks.
    const lowest = entry.held.peek()?.seq ?? Infinity;
    const missing = this.retainedAfter(topic, start.afterSeq).filter((m) => m.seq < lowest);
    if (missing.length > 0) {
      const rest = [...iterate(entry.held)];
      entry.held.clear();
      for (const message of missing) entry.held.push(message);
      for (const message of rest) entry.held.push(message);
    }
    const consumer: MutableConsumer = { topic, name, owner: start.owner, ackedSeq: start.afterSeq, ackedId: positionId(start.afterSeq), lastSeenAt: now, lost: null };
    entry.consumers.set(name, consumer);
    this.releaseBeyondLimit(entry, consumer);
    this.releaseAcknowledged(entry);
    return this.view(entry, consumer);
  }

  async get(topic: string, name: string): Promise<ConsumerState | undefined> {
    const entry = this.topics.get(topic);
    const consumer = entry?.consumers.get(name);
    return consumer ? this.view(entry!, consumer) : undefined;
  }

  async list(topic: string): Promise<ConsumerState[]> {
    const entry = this.topics.get(topic);
    if (!entry) return [];
    return [...entry.consumers.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((c) => this.view(entry, c));
  }

  async readPending(topic: string, afterSeq: number, limit: number): Promise<Message[]> {
    const held = this.topics.get(topic)?.held;
    if (!held) return [];
    const out: Message[] = [];
    for (let i = firstAfter(held, afterSeq); i < held.length && out.length < limit; i++) out.push(held.at(i)!);
    return out;
  }

  async ack(topic: string, name: string, id: string, now: number): Promise<AckOutcome> {
    const entry = this.topics.get(topic);
    const consumer = entry?.consumers.get(name);
    if (!entry || !consumer) return { kind: 'no-consumer' };
    let target: Message | undefined;
    for (let i = firstAfter(entry.held, consumer.ackedSeq); i < entry.held.length; i++) {
      const message = entry.held.at(i)!;
      // A reused custom id names its latest message.
      if (message.id === id) target = message;
    }
    if (!target) {
      const behind = isSeqId(id) && Number(id) <= consumer.ackedSeq;
      return { kind: behind ? 'behind' : 'unknown', state: this.view(entry, consumer) };
    }
    consumer.ackedSeq = target.seq;
    consumer.ackedId = target.id;
    consumer.lost = null;
    consumer.lastSeenAt = now;
    this.releaseAcknowledged(entry);
    return { kind: 'acked', state: this.view(entry, consumer) };
  }

  async touch(consumers: readonly { topic: string; name: string }[], now: number): Promise<void> {
    for (const { topic, name } of consumers) {
      const consumer = this.topics.get(topic)?.consumers.get(name);
      if (consumer) consumer.lastSeenAt = now;
    }
  }

  async expire(before: number): Promise<number> {
    let expired = 0;
    for (const [topic, entry] of this.topics) {
      for (const [name, consumer] of entry.consumers) {
        if (consumer.lastSeenAt >= before) continue;
        entry.consumers.delete(name);
        expired++;
      }
      if (entry.consumers.size === 0) this.topics.delete(topic);
      else this.releaseAcknowledged(entry);
    }
    return expired;
  }

  private view(entry: HeldTopic, consumer: MutableConsumer): ConsumerState {
    const pending = entry.held.length - firstAfter(entry.held, consumer.ackedSeq);
    return { ...consumer, pending };
  }

  /** Past `maxPending`, moves the consumer's ack over its oldest pending messages and records them as lost. */
  private releaseBeyondLimit(entry: HeldTopic, consumer: MutableConsumer): void {
    const first = firstAfter(entry.held, consumer.ackedSeq);
    const excess = entry.held.length - first - this.maxPending;
    if (excess <= 0) return;
    const oldest = entry.held.at(first)!;
    const newest = entry.held.at(first + excess - 1)!;
    consumer.lost = {
      firstId: consumer.lost?.firstId ?? oldest.id,
      lastId: newest.id,
      count: (consumer.lost?.count ?? 0) + excess,
    };
    consumer.ackedSeq = newest.seq;
    consumer.ackedId = newest.id;
  }

  /** Drops held messages that every consumer of the topic acknowledged. */
  private releaseAcknowledged(entry: HeldTopic): void {
    let lowest = Infinity;
    for (const consumer of entry.consumers.values()) lowest = Math.min(lowest, consumer.ackedSeq);
    while (entry.held.length > 0 && entry.held.peek()!.seq <= lowest) entry.held.shift();
  }
}

function* iterate<T>(ring: RingBuffer<T>): Iterable<T> {
  for (let i = 0; i < ring.length; i++) yield ring.at(i)!;
}
