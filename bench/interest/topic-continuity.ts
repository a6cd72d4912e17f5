/**
 * Hole detection for at-most-once copies (way 2): per topic, the last seq a node has of it.
 * A copy whose `prev` is that seq follows on; one whose `prev` is above it means copies were
 * lost (a reconnect, an output buffer limit) and the node must read the hole from the topic's
 * history before dispatching this one; one at or below it was had already.
 */

/** What to do with a copy. */
export type Continuity = 'next' | 'hole' | 'duplicate';

export class TopicContinuity {
  private readonly last = new Map<string, number>();

  /** Starts a topic at a position (the shard's seq when its channel was subscribed to). */
  start(topic: string, seq: number): void {
    this.last.set(topic, seq);
  }

  /** Forgets a topic (its channel was left). */
  stop(topic: string): void {
    this.last.delete(topic);
  }

  /** The last seq had of `topic`; undefined when it is not followed. */
  lastOf(topic: string): number | undefined {
    return this.last.get(topic);
  }

  /**
   * Judges the copy `seq` (with `prev`) of `topic` and, unless it is a duplicate, moves the
   * topic on to it: a hole is the caller's to fill, from `lastOf` before the call to `prev`.
   * A topic not started is not followed: its copies are duplicates (left over from before).
   */
  accept(topic: string, seq: number, prev: number): Continuity {
    const last = this.last.get(topic);
    if (last === undefined || seq <= last) return 'duplicate';
    this.last.set(topic, seq);
    return prev > last ? 'hole' : 'next';
  }
}
