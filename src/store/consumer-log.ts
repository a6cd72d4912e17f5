import type { Message } from '../hub/message.js';

/** Messages a consumer may hold unacknowledged when the store is not told otherwise. */
export const DEFAULT_CONSUMER_MAX_PENDING = 10_000;

/** What a consumer lost to `maxPending`: released unacknowledged, reported by a `gap` event. */
export interface LostRange {
  /** Event id of the first and last message released, and how many were. */
  readonly firstId: string;
  readonly lastId: string;
  readonly count: number;
}

/** One named consumer of one topic, as the store keeps it. */
export interface ConsumerState {
  readonly topic: string;
  readonly name: string;
  /** The subject (`sub`) the consumer belongs to; null on a hub without subscriber keys. */
  readonly owner: string | null;
  /** Every message of the topic up to this seq is acknowledged (or was before the consumer existed). */
  readonly ackedSeq: number;
  /** The event id of the message at `ackedSeq`, or `String(ackedSeq)` for the starting position. */
  readonly ackedId: string;
  /** Held messages after `ackedSeq`: delivered or not, unacknowledged. */
  readonly pending: number;
  /** Last connection, disconnection or acknowledgement, in ms since the epoch. */
  readonly lastSeenAt: number;
  /** Released unacknowledged since the last acknowledgement; null when nothing was. */
  readonly lost: LostRange | null;
}

/** What a new consumer starts from (an existing one ignores it). */
export interface ConsumerStart {
  readonly owner: string | null;
  /** It holds, as pending, every retained message of the topic after this seq. */
  readonly afterSeq: number;
}

/** The outcome of an acknowledgement. */
export type AckOutcome =
  /** The ack moved to the message with that id. */
  | { readonly kind: 'acked'; readonly state: ConsumerState }
  /** The id is at or behind the current ack: nothing changed (acks are idempotent). */
  | { readonly kind: 'behind'; readonly state: ConsumerState }
  /** No message pending for the consumer has that id, and it is not behind the ack. */
  | { readonly kind: 'unknown'; readonly state: ConsumerState }
  | { readonly kind: 'no-consumer' };

/**
 * Named, acknowledged consumers of a topic, and the messages they hold. Guarantees every
 * implementation keeps (checked by the store contract suite):
 *
 * - **Held past retention.** Once a topic has a consumer, every message committed to it is held
 *   for its consumers atomically with the commit (memory and SQLite; Redis: before the
 *   publisher's answer), whatever the store's retention does to its history, until every
 *   consumer of the topic acknowledged it.
 * - **Bounded.** A consumer holds at most `maxPending` messages: past it, its oldest are
 *   released (its ack moves forward) and recorded in `lost` until its next acknowledgement.
 * - **Ordered.** {@link readPending} returns held messages in seq order.
 * - **Durable.** State and held messages survive a restart of a durable store (SQLite, Redis),
 *   committed before the call resolves.
 */
export interface ConsumerLog {
  /**
   * Returns the consumer, creating it when missing from `start`: it then holds, as pending,
   * the topic's retained messages after `start.afterSeq` (past `maxPending`, the oldest of them
   * are lost at once). `lastSeenAt` becomes `now` either way.
   */
  attach(topic: string, name: string, start: ConsumerStart, now: number): Promise<ConsumerState>;
  /** The consumer, or undefined when there is none. */
  get(topic: string, name: string): Promise<ConsumerState | undefined>;
  /** Every consumer of the topic, by name. */
  list(topic: string): Promise<ConsumerState[]>;
  /** At most `limit` messages held for the topic with `seq > afterSeq`, oldest first. */
  readPending(topic: string, afterSeq: number, limit: number): Promise<Message[]>;
  /**
   * Acknowledges every message up to the pending one with event id `id` (hub ids and custom
   * ones alike), clears `lost` and sets `lastSeenAt`; held messages no consumer of the topic
   * still needs are released.
   */
  ack(topic: string, name: string, id: string, now: number): Promise<AckOutcome>;
  /** Sets `lastSeenAt` of these consumers (those that still exist) to `now`. */
  touch(consumers: readonly { topic: string; name: string }[], now: number): Promise<void>;
  /** Deletes every consumer last seen before `before`, releasing what it held; returns how many. */
  expire(before: number): Promise<number>;
}

/** True for ids of the hub's own form (a seq in decimal). */
export function isSeqId(id: string): boolean {
  return /^[1-9][0-9]{0,15}$/.test(id);
}

/** The id a consumer's starting position is shown as (no message sits there). */
export function positionId(seq: number): string {
  return seq > 0 ? String(seq) : 'earliest';
}
