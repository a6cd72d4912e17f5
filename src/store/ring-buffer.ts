/**
 * A growable circular queue. Shifting from the front of a plain array is O(n) per call; history
 * and backlogs shift constantly, so they use this instead: O(1) push and shift, and the backing
 * array only grows (doubling) up to what the queue has held at once.
 */
export class RingBuffer<T> {
  private items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(initialCapacity = 16) {
    this.items = new Array<T | undefined>(Math.max(2, initialCapacity));
  }

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) % this.items.length] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    return item;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** The item at position `index` from the front (0 is the oldest). */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.count) return undefined;
    return this.items[(this.head + index) % this.items.length];
  }

  clear(): void {
    this.items = new Array<T | undefined>(16);
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.items.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
  }
}

/** Index of the first entry with `seq > afterSeq` in a seq-ordered ring (binary search). */
export function firstAfter(ring: RingBuffer<{ readonly seq: number }>, afterSeq: number): number {
  let lo = 0;
  let hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring.at(mid)!.seq <= afterSeq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
