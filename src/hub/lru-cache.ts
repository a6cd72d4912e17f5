/**
 * A bounded least-recently-used map. A `Map` keeps insertion order, so re-inserting on every
 * hit keeps the least recently used entry first, and eviction removes the first key.
 *
 * Written here rather than taken from a library: the one LRU in `node_modules` (`toad-cache`)
 * is fastify's dependency, not ours, and relying on a transitive package would break the day
 * fastify drops it; these 30 lines are all the hub needs (get, set, a size bound).
 */
export class LruCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError('An LRU cache needs a capacity of at least 1');
  }

  /** The value for `key`, marking it as the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used one when full. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as K);
  }

  get size(): number {
    return this.entries.size;
  }
}
