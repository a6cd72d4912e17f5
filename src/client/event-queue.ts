/**
 * FIFO of events waiting for the async iterator: a ring that doubles when full, so push and
 * shift are O(1) (an array with `shift()` is O(n) per event). The bound is enforced by the
 * reader, not here: the subscription stops reading the socket while `size` is at or above its
 * high-water mark, so the queue holds at most that many events plus the ones parsed from one
 * network chunk.
 */
export class EventQueue<T> {
  private slots: (T | undefined)[] = new Array<T | undefined>(16);
  private head = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) & (this.slots.length - 1)] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.slots[this.head];
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) & (this.slots.length - 1);
    this.count--;
    return item;
  }

  clear(): void {
    this.slots = new Array<T | undefined>(16);
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.slots.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.slots[(this.head + i) & (this.slots.length - 1)];
    this.slots = next;
    this.head = 0;
  }
}
