/**
 * One interval timer that calls a function for every registered item: heartbeats for all
 * streams, the article's demo loop for all its streams. One timer per purpose, not one per
 * connection, so thousands of idle subscribers cost no timers at all.
 */
export class Ticker<T> {
  private readonly items = new Set<T>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly tick: (item: T) => void,
  ) {}

  add(item: T): void {
    this.items.add(item);
    if (!this.timer && this.intervalMs > 0) {
      this.timer = setInterval(() => {
        for (const each of this.items) this.tick(each);
      }, this.intervalMs);
      this.timer.unref();
    }
  }

  delete(item: T): void {
    this.items.delete(item);
    if (this.items.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get size(): number {
    return this.items.size;
  }

  /** True while the timer exists (for leak tests). */
  get running(): boolean {
    return this.timer !== undefined;
  }

  stop(): void {
    this.items.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
