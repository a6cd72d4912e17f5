/**
 * The most recent event ids a tab delivered, to drop an event that a takeover replays twice. A
 * new leader resumes after the last id the tabs saw, so a repeat can only be one of the last
 * few; keeping 1024 bounds the memory whatever the stream's length.
 */
export class SeenIds {
  // A Set iterates in insertion order, so its first value is the oldest id.
  private readonly ids = new Set<string>();

  constructor(private readonly limit = 1024) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value as string);
  }
}
